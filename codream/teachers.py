"""A task's teachers: fetched by CID (verified), loaded into the zoo architecture the spec
names, frozen. Miners dream from them, verifiers distil from them."""
from __future__ import annotations

from torch import nn

from . import content
from .spec import TaskSpec
from .zoo import ModelConfigError, freeze, load_model


class TeacherError(RuntimeError):
    """A task-side input (teacher weights) is unusable: not a miner's or bundle's fault."""


def load_teachers(spec: TaskSpec, client=None) -> list[nn.Module]:
    teachers = []
    for i, t in enumerate(spec.teachers):
        hint = spec.path.parent / t["file"] if spec.path is not None and t.get("file") else None
        path = content.fetch(t["weights_cid"], hint=hint, client=client)
        try:
            model, _ = load_model(path, t["model"])
        except ModelConfigError as exc:
            raise TeacherError(f"teachers[{i}]: {exc}") from None
        teachers.append(freeze(model))
    return teachers
