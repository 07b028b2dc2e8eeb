"""submit stage: submission.csv (Open Images mask encoding), evaluation where truth is known, the report."""
