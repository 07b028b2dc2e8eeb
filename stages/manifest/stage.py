"""The manifest stage: list a split's images once, validate them, and cut them into shards."""

from stages import inputs
from stages.config import pipeline
from stages.declare import Stage, TaskSpec
from stages.manifest import contract, core, validate


def content(task) -> dict:
    settings = pipeline()
    return {"folder": inputs.split_folder(task.split), "table": inputs.split_table(task.split),
            "shard_size": settings.shard_size, "max_pixels": settings.max_pixels, "bad_images": settings.bad_images}


def run(ctx) -> dict:
    """Every problem of the table and of the images, found before any work: one :class:`core.InputError`
    lists them all; with ``bad_images = skip`` bad images are left out instead and listed in rejected.csv."""
    inputs.forget_manifest(ctx.folder)
    settings = pipeline()
    folder, table_uri = inputs.split_folder(ctx.split), inputs.split_table(ctx.split)
    labelled = ctx.split in core.LABELLED_SPLITS
    listed = inputs.listing(ctx.split)  # the listing the folder's digest was made of
    listing = core.read_listing(listed.table, table_uri, labelled) if listed.table is not None else None
    found = core.channel_files(list(listed.files))
    checked = validate.check_split(folder, found, table_uri, listing, labelled, settings.max_pixels)
    subject = f"the {ctx.split} split's input ({folder}, {table_uri})"
    kept, rejected = checked.usable(settings.bad_images, subject)
    if not kept:
        reason = (f"no usable {ctx.split} images: all {len(checked.images)} are bad" if checked.images else
                  f"no {ctx.split} images: {table_uri if listing is not None else folder} lists none")
        raise core.InputError([core.Problem(folder, reason), *rejected], subject, "; nothing runs on it")
    ctx.progress(f"{len(kept)} {ctx.split} image(s) validated, {len(checked.images) - len(kept)} left out")
    return {contract.MANIFEST: core.manifest_table(kept, checked.labels, settings.shard_size, listed.files),
            contract.REJECTED: validate.rejected_table(rejected)}


MANIFEST = TaskSpec(name="Manifest", doc="The split's images, validated, their channel files, labels and shards.",
                    outputs=(contract.MANIFEST, contract.REJECTED), run=run, content=content,
                    source=lambda task: inputs.listing_digest(task.split))

# The manifest runs while Luigi builds the graph: its InputError reaches the user through Luigi's log, which
# prints what a task raises with a traceback. This keeps the message alone (it belongs with the command-line
# entry points; here it holds for `luigi --module stages`, `python -m stages.demo` and the stage images).
validate.quiet_input_errors()

STAGE = Stage(name="manifest", doc=__doc__.split("\n")[0], tasks=(MANIFEST,), whole="Manifest")
