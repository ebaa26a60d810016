"""An inbound Activity built from its parsed JSON dict the way msrest would build it, for a fraction of the CPU.

Why: `Activity().deserialize(body)` costs 0.1-0.2 ms CPU per activity, almost all of it overhead rather than
data: each call gathers the 71 classes of botbuilder.schema into a new Deserializer, copies and runs two key
extractors for all 40 attributes of Activity (most of them absent), and parses each timestamp through
isodate's regexes and Decimal arithmetic.

Fast path: each model class's `_attribute_map` is read once into a plan (JSON key -> attribute name and
converter); a body is built by walking only the keys it has and calling the class's keyword constructor.
Each converter returns what msrest's Deserializer returns for its `type` string:

- 'str', 'bool', 'int': the value, when JSON already gave exactly that type;
- 'iso-8601': for the form Teams sends (2026-11-27T09:30:00.1234567Z, or an offset such as +01:00), the
  datetime isodate gives: fraction cut (not rounded) to microseconds, isodate's own tzinfo (so tzname()
  and the tzinfo class match too);
- 'object' (value, channelData, properties): the value as parsed; msrest deep-copies it, but a JSON copy
  equals its original and nothing else holds this body;
- a model name ('ChannelAccount'): that model, built from a dict with its own plan; '[X]': a list of X,
  null items staying None;
- keys the model does not map: its `additional_properties`, as raw JSON, as msrest does (a mention
  Entity's "mentioned" and "text", conversation "tenantId" live there). A null mapped key is as absent.

Fallback: anything else raises NotCertain and the caller hands the whole body to msrest: values msrest
would coerce or reject (a bool as "true" or 1, an int as "7", a string field holding a number, a model
given a list, a non-Teams timestamp spelling), types not mapped here ('{Entity}', 'float', enums,
durations), and a model class whose map or constructor is not plain. So whatever the body, the caller
ends with msrest's result; the fast path only decides when msrest may be skipped.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import datetime

import isodate
from botbuilder.schema import Activity
from msrest.serialization import Model


class NotCertain(Exception):
    """This body holds something the fast path cannot promise to build exactly as msrest would."""


Converter = Callable[[object], object]

# msrest resolves type names against every class of the Activity's package (Model._infer_class_models).
_CLASSES_BY_NAME: dict[str, type] = Activity._infer_class_models()


def activity_from_dict(body: dict) -> Activity:
    """The Activity msrest's `Activity().deserialize(body)` would return, or NotCertain."""
    return _build(Activity, body)


# -- models ---------------------------------------------------------------------------------------------


def _build(model: type, data: object) -> Model:
    fields = _fields_of(model)
    if fields is None or type(data) is not dict:  # msrest fails on a model given a non-object
        raise NotCertain
    known: dict[str, object] = {}
    unknown: dict[str, object] = {}
    for key, value in data.items():
        field = fields.get(key)
        if field is None:
            unknown[key] = value
        elif value is not None:
            attribute, convert = field
            known[attribute] = convert(value)
    built = model(**known)
    if unknown:  # msrest leaves the constructor's {} when there is nothing to put there
        built.additional_properties = unknown
    return built


_FIELDS: dict[type, dict[str, tuple[str, Converter]] | None] = {}


def _fields_of(model: type) -> dict[str, tuple[str, Converter]] | None:
    """JSON key -> (attribute, converter) for a model, read from its _attribute_map once; None: not plain."""
    try:
        return _FIELDS[model]
    except KeyError:
        fields = _FIELDS[model] = _read_attribute_map(model) if _is_plain(model) else None
        return fields


def _read_attribute_map(model: type) -> dict[str, tuple[str, Converter]]:
    attribute_map: dict[str, dict] = getattr(model, "_attribute_map")  # msrest's models all have one  # noqa: B009
    return {spec["key"]: (attribute, _converter(spec["type"])) for attribute, spec in attribute_map.items()}


def _is_plain(model: type) -> bool:
    """True when msrest would just pass the mapped attributes to the keyword constructor.

    Not plain: polymorphic models (msrest pops the discriminator and picks a subclass), readonly or
    constant attributes (set apart from the constructor), flattened ("a.b") or empty keys (nested lookup,
    an explicit additionalProperties attribute), and constructors that do more than store their keywords
    (defaulting to something other than None, or transforming what they get)."""
    if not (isinstance(model, type) and issubclass(model, Model)):
        return False
    if model.__dict__.get("_subtype_map") or model._validation:
        return False
    attributes = model._attribute_map
    if "additional_properties" in attributes or any(not spec["key"] or "." in spec["key"] or "\\" in spec["key"]
                                                   for spec in attributes.values()):
        return False
    empty = model()
    if empty.additional_properties != {} or any(getattr(empty, a, object()) is not None for a in attributes):
        return False
    marker = object()
    filled = model(**{attribute: marker for attribute in attributes})
    return all(getattr(filled, attribute, None) is marker for attribute in attributes)


# -- converters, one per _attribute_map type string -----------------------------------------------------


def _converter(type_name: str) -> Converter:
    """Checked in msrest's order (Deserializer.deserialize_data): basic types, special types, lists, models."""
    if type_name in _EXACT_TYPES:
        return _exactly(_EXACT_TYPES[type_name])
    if type_name == "iso-8601":
        return _teams_timestamp
    if type_name == "object":
        return _as_parsed
    if type_name[:1] == "[" and type_name[-1:] == "]":
        return _list_of(_converter(type_name[1:-1]))
    model = _CLASSES_BY_NAME.get(type_name)
    if isinstance(model, type) and issubclass(model, Model):
        return functools.partial(_build, model)
    return _not_mapped  # '{X}', 'float', enums, durations...: none in what Teams sends us


_EXACT_TYPES = {"str": str, "bool": bool, "int": int}


def _exactly(kind: type) -> Converter:
    def convert(value: object) -> object:
        if type(value) is kind:  # not isinstance: msrest turns True into 1 for an int
            return value
        raise NotCertain
    convert.__name__ = f"exactly_{kind.__name__}"
    return convert


def _as_parsed(value: object) -> object:
    return value


def _list_of(convert_item: Converter) -> Converter:
    def convert(value: object) -> list:
        if type(value) is not list:  # msrest raises for anything but a list
            raise NotCertain
        return [None if item is None else convert_item(item) for item in value]
    return convert


def _not_mapped(value: object) -> object:
    raise NotCertain


# The one timestamp form Teams and Bot Framework emulators send. Narrower than what msrest accepts, on purpose:
# ASCII digits only (msrest's own pre-check would let other Unicode digits through to isodate), years
# 1000-2999 and offsets within +-23:59 (so no UTC conversion can leave datetime's range, which msrest
# rejects), upper-case T and Z (msrest upper-cases first). Anything else goes to msrest.
_TEAMS_TIMESTAMP = re.compile(
    r"([12][0-9]{3})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])")


def _teams_timestamp(value: object) -> datetime:
    match = _TEAMS_TIMESTAMP.fullmatch(value) if type(value) is str else None
    if match is None:
        raise NotCertain
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    # msrest keeps 6 fraction digits and isodate floors to microseconds: the first 6 digits, padded.
    microsecond = int(fraction[:6].ljust(6, "0")) if fraction else 0
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), microsecond,
                        _isodate_zone(zone))
    except ValueError:  # February 30th, hour 24, second 60: msrest decides (it raises)
        raise NotCertain from None


@functools.lru_cache(maxsize=256)
def _isodate_zone(designator: str):
    """isodate's tzinfo for 'Z' (its UTC) or '+01:00' (a FixedOffset named '+01:00'), built by isodate
    itself; they hold no mutable state, so one per designator is shared."""
    return isodate.parse_tzinfo(designator)
