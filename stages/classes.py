"""The 19 localisation classes of the HPA Single Cell Classification challenge (SPEC section 1)."""

CLASS_NAMES: tuple[str, ...] = (
    "Nucleoplasm",
    "Nuclear membrane",
    "Nucleoli",
    "Nucleoli fibrillar center",
    "Nuclear speckles",
    "Nuclear bodies",
    "Endoplasmic reticulum",
    "Golgi apparatus",
    "Intermediate filaments",
    "Actin filaments",
    "Microtubules",
    "Mitotic spindle",
    "Centrosome",
    "Plasma membrane",
    "Mitochondria",
    "Aggresome",
    "Cytosol",
    "Vesicles and punctate cytosolic patterns",
    "Negative",
)
NUM_CLASSES = len(CLASS_NAMES)
NEGATIVE = NUM_CLASSES - 1
CHANNELS: tuple[str, ...] = ("red", "green", "blue", "yellow")
SCORE_COLUMNS: tuple[str, ...] = tuple(f"class_{index}" for index in range(NUM_CLASSES))


def parse_labels(label: str) -> list[int]:
    """``"0|5|16"`` -> ``[0, 5, 16]``; an empty or missing label is no class."""
    if not isinstance(label, str) or not label.strip():
        return []
    labels = sorted({int(part) for part in label.split("|")})
    bad = [value for value in labels if not 0 <= value < NUM_CLASSES]
    if bad:
        raise ValueError(f"label {label!r} holds classes outside 0..{NUM_CLASSES - 1}: {bad}")
    return labels


def format_labels(labels) -> str:
    return "|".join(str(int(value)) for value in sorted(set(labels)))
