"""manifest stage: the images of each split, cut into shards."""
