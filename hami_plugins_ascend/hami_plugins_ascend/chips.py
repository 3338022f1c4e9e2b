"""HAMi's Ascend chip catalogue (``chips.yaml``) as typed, validated data.

One :class:`ChipConfig` per chip, keyed by the chip name ``npu-smi`` prints (``910B3``) and by HAMi's
CommonWord (``Ascend910B3``). The rules that read it live in :mod:`.rules`. The built-in table is the default;
a HAMi user's own ``vnpus`` entries replace or extend it per node (:mod:`.vnpus_config`).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from hami_hal.errors import ProfileError

CHIPS_FILE = Path(__file__).with_name("chips.yaml")
#: HAMi's resource domain for every Ascend chip.
DOMAIN = "huawei.com"


class Template(BaseModel):
    """One vNPU template: ``virNN[_Mc[_Gg]]`` (NN AI cores, M AI CPUs, G GB of HBM)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^vir\d{2}(_\d+c)?(_\d+g)?(_n?dvpp)?$")
    memory: int = Field(ge=1, le=1 << 20)
    aiCore: int = Field(ge=1, le=256)  # noqa: N815 - HAMi's key
    aiCPU: int = Field(default=0, ge=0, le=256)  # noqa: N815


class ChipConfig(BaseModel):
    """One entry of HAMi's ``vnpus.configs`` (HAMi chart ``device-configmap.yaml``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chipName: str = Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z-]{0,31}$")  # noqa: N815
    commonWord: str = Field(pattern=r"^Ascend[0-9A-Za-z-]{1,40}$")  # noqa: N815
    #: HAMi's resource names; when given, the ones hami-hal serves for this commonWord (``huawei.com/<CW>``,
    #: ``-memory``, ``-core``): the scheduler and the kubelet know no others (checked in :meth:`_ordered`).
    resourceName: str | None = Field(default=None, max_length=253)  # noqa: N815
    resourceMemoryName: str | None = Field(default=None, max_length=253)  # noqa: N815
    resourceCoreName: str | None = Field(default=None, max_length=253)  # noqa: N815
    #: HAMi: a ``-memory`` request is multiplied by this when > 1. hami-hal's Ascend families count MiB, so
    #: only HAMi's no-op values (0 = unset, 1) are taken.
    memoryFactor: int = Field(default=1, ge=0, le=1 << 20)  # noqa: N815
    #: Read by the admission webhook (``hami-scheduler webhook --device-config``): ``ASCEND_VISIBLE_DEVICES=""``
    #: for containers without this chip; the node side only checks the type.
    overwriteEnv: bool = False  # noqa: N815
    memoryAllocatable: int = Field(ge=1, le=1 << 20)  # noqa: N815
    memoryCapacity: int = Field(ge=1, le=1 << 20)  # noqa: N815
    aiCore: int = Field(ge=1, le=256)  # noqa: N815
    aiCPU: int = Field(default=0, ge=0, le=256)  # noqa: N815
    superPod: bool = False  # noqa: N815
    runtimeClassName: str | None = Field(default=None, max_length=253,  # noqa: N815
                                         pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    templates: tuple[Template, ...] = Field(max_length=64)

    @model_validator(mode="after")
    def _ordered(self) -> ChipConfig:
        mems = [t.memory for t in self.templates]
        if not mems:
            raise ValueError("needs at least one template")
        if mems != sorted(mems):
            raise ValueError("templates must be listed smallest memory first")
        if mems[-1] > self.memoryCapacity or self.memoryAllocatable > self.memoryCapacity:
            raise ValueError("a template or memoryAllocatable exceeds memoryCapacity")
        if any(t.aiCore > self.aiCore for t in self.templates):
            raise ValueError("a template has more AI cores than the chip")
        names = [t.name for t in self.templates]
        if len(set(names)) != len(names):
            raise ValueError("a template name is listed twice")
        return self

    @field_validator("resourceName", "resourceMemoryName", "resourceCoreName")
    @classmethod
    def _served_name(cls, v: str | None, info: ValidationInfo) -> str | None:
        word = info.data.get("commonWord")
        if v is None or word is None:
            return v
        want = f"{DOMAIN}/{word}" + {"resourceName": "", "resourceMemoryName": "-memory",
                                      "resourceCoreName": "-core"}[info.field_name]
        if v != want:
            raise ValueError(f"hami-hal serves {want!r} for commonWord {word} (HAMi's name; the scheduler and "
                             "the kubelet know no other)")
        return v

    @field_validator("runtimeClassName", mode="before")
    @classmethod
    def _unset_class(cls, v: object) -> object:
        return None if v == "" else v  # HAMi's unset value (Go's empty string)

    @field_validator("memoryFactor")
    @classmethod
    def _factor(cls, v: int) -> int:
        if v > 1:
            raise ValueError("HAMi multiplies a -memory request by memoryFactor when it is above 1; hami-hal's "
                             "Ascend -memory resources count MiB (memoryFactor 1): not supported")
        return v

    @property
    def resource(self) -> str:
        return f"{DOMAIN}/{self.commonWord}"

    @property
    def memory_resource(self) -> str:
        return f"{DOMAIN}/{self.commonWord}-memory"

    @property
    def core_resource(self) -> str:
        return f"{DOMAIN}/{self.commonWord}-core"

    def template(self, name: str) -> Template | None:
        return next((t for t in self.templates if t.name == name), None)


class _Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid")
    chips: tuple[ChipConfig, ...]


def load_chips(path: Path = CHIPS_FILE) -> tuple[ChipConfig, ...]:
    """Parse and validate a chip catalogue file; one clear line on any error."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        chips = _Catalogue.model_validate(raw).chips
    except (OSError, yaml.YAMLError) as err:
        raise ProfileError(f"{path}: cannot read the Ascend chip catalogue: {err}") from None
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ProfileError(f"{path}: {loc}: {first['msg']}") from None
    words = [c.commonWord for c in chips]
    if len(set(words)) != len(words):
        raise ProfileError(f"{path}: a commonWord is listed twice")
    return chips


@cache
def chips() -> tuple[ChipConfig, ...]:
    """The built-in table (HAMi's chart defaults)."""
    return load_chips()


def find_chip(table: tuple[ChipConfig, ...], name: str) -> ChipConfig | None:
    """The entry of ``table`` for a chip name as npu-smi prints it (``910B3``, ``310P3``, ``Ascend910``)."""
    return next((c for c in table if c.chipName == name.strip()), None)


def by_chip_name(name: str) -> ChipConfig | None:
    """The built-in entry for a chip name as npu-smi prints it."""
    return find_chip(chips(), name)


def by_common_word(word: str) -> ChipConfig | None:
    return next((c for c in chips() if c.commonWord == word), None)
