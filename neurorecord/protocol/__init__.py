"""Protocol files: the written record of an experiment (schema and loading)."""

from .load import load_protocol, protocol_from_text
from .schema import FORMAT_VERSION, Protocol, RecordSpec, SubjectSpec

__all__ = ["load_protocol", "protocol_from_text", "Protocol", "RecordSpec", "SubjectSpec", "FORMAT_VERSION"]
