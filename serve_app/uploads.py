"""The dataset upload form, parsed from the request stream with python-multipart.

Starlette's `UploadFile` spools the whole body before a route sees it, so a size check
after it comes too late (and trusts nothing but the bytes it already stored). Here the
file part's bytes are counted as they arrive and the upload stops with a 413 at the first
byte over the limit, with or without a Content-Length header.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from reasoning.dialects import CsvOptions, DialectError
from reasoning.schemas import Dtype
from serve_app import problems
from serve_app.problems import Problem

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

MAX_NAME_LENGTH = 1000
"""Characters of the optional `name` field."""
MAX_OPTION_BYTES = 16 * 1024
"""Bytes of each of the other form fields (a `dtypes` object of a few hundred columns)."""
OPTION_FIELDS: dict[str, dict[str, Any]] = {
    "delimiter": {"type": "string", "maxLength": 1, "description": "CSV field separator "
                  "(default: detected among comma, semicolon, tab and pipe)"},
    "decimal": {"type": "string", "enum": [".", ","], "description": "CSV decimal mark "
                "(default: detected; ',' reads 3,14 and 1.234,5)"},
    "date_format": {"type": "string", "description": "strftime format of the CSV's text dates,"
                    " e.g. %d/%m/%Y (default: ISO 8601, or day/month order read from the data)"},
    "encoding": {"type": "string", "description": "The CSV's text encoding, e.g. cp1252 "
                 "(default: UTF-8, else guessed, with a warning)"},
    "dtypes": {"type": "string", "contentMediaType": "application/json", "description":
               "A JSON object retyping columns as they are read, e.g. {\"weight\": \"float\"}"
               " (integer, float, boolean, categorical, timestamp)"},
    "errors": {"type": "string", "enum": ["raise", "coerce"], "description": "With `dtypes`: "
               "'raise' (default) refuses the upload when a value does not convert, 'coerce' "
               "makes it null (and the answer's warnings say which)"},
}
"""The form's optional fields besides `file` and `name` (their values stay text here)."""
_DTYPES = TypeAdapter(dict[str, Dtype])

OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "title": "DatasetUpload",
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "title": "File",
                            "type": "string",
                            "contentMediaType": "application/octet-stream",
                            "description": "A CSV (.csv, .tsv, .txt) or Parquet file",
                        },
                        "name": {
                            "title": "Name",
                            "type": "string",
                            "maxLength": MAX_NAME_LENGTH,
                            "description": "The dataset's name (default: the file name)",
                        },
                        **OPTION_FIELDS,
                    },
                },
                "examples": {
                    "semicolons": {
                        "summary": "A European spreadsheet export, dialect detected",
                        "value": {"file": "x;city;price\n1;harbor;3,14\n", "name": "prices"},
                    },
                    "explicit": {
                        "summary": "Dialect and a column's type named",
                        "value": {"file": "x|when|weight\n1|31/12/2023|12\n", "delimiter": "|",
                                  "date_format": "%d/%m/%Y", "dtypes": "{\"weight\": \"float\"}"},
                    },
                },
            }
        },
    }
}
"""The form as the OpenAPI document shows it; the route reads the stream itself."""


@dataclass
class Upload:
    """The form's fields: the file's bytes and name, and the optional dataset name."""

    content: bytes
    filename: str
    name: str | None
    options: dict[str, str] = field(default_factory=dict)
    """The optional fields of `OPTION_FIELDS` that were sent, as text."""


@dataclass
class _Form:
    """What the parser's callbacks collect, part by part."""

    max_file_bytes: int
    file: bytearray | None = None
    filename: str | None = None
    name: bytearray | None = None
    options: dict[str, bytearray] = field(default_factory=dict)
    ended: bool = False
    _headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    _field: bytearray = field(default_factory=bytearray)
    _value: bytearray = field(default_factory=bytearray)
    _target: bytearray | None = None
    _target_limit: int = 0

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self._field.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._value.extend(d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self._headers, self._target = [], None

    def _header_end(self) -> None:
        self._headers.append((bytes(self._field).lower(), bytes(self._value)))
        self._field, self._value = bytearray(), bytearray()

    def _headers_finished(self) -> None:
        disposition = dict(self._headers).get(b"content-disposition", b"")
        _, options = parse_options_header(disposition)
        part = options.get(b"name", b"").decode("latin-1")
        if part == "file":
            if self.file is not None:
                raise problems.invalid(["body", "file"], "send one file per upload")
            self.file = self._target = bytearray()
            self._target_limit = self.max_file_bytes
            self.filename = _utf8("file", options.get(b"filename", b""), "file name")
        elif part == "name":
            self.name = self._target = bytearray()
            self._target_limit = MAX_NAME_LENGTH * 4  # UTF-8 bytes; characters checked later
        elif part in OPTION_FIELDS:
            self.options[part] = self._target = bytearray()
            self._target_limit = MAX_OPTION_BYTES
        # Any other part is ignored, as FastAPI's form parsing does; BodyLimit bounds it.

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._target is None:
            return
        self._target.extend(data[start:end])
        if len(self._target) > self._target_limit:
            if self._target is self.file:
                raise Problem(413, f"the file is larger than the limit of "
                                   f"{self.max_file_bytes:,} bytes")
            if self._target is self.name:
                raise problems.invalid(["body", "name"],
                                       f"longer than {MAX_NAME_LENGTH} characters")
            raise problems.invalid(["body"], f"a form field is longer than {MAX_OPTION_BYTES:,}"
                                   " bytes")

    def _end(self) -> None:
        self.ended = True


def _utf8(part: str, raw: bytes, what: str) -> str:
    """Browsers send UTF-8 file names and fields; anything else is the client's mistake."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise problems.invalid(["body", part], f"the {what} is not UTF-8") from None


async def read_upload(request: Request, max_file_bytes: int) -> Upload:
    """The upload form's fields, reading the body once and stopping at the file limit."""
    media, options = parse_options_header(request.headers.get("content-type", ""))
    if media != b"multipart/form-data" or not options.get(b"boundary"):
        raise problems.invalid(
            ["body"], "send a multipart/form-data body with a `file` part (and optional `name`)"
        )
    form = _Form(max_file_bytes)
    try:
        parser = MultipartParser(options[b"boundary"], form.callbacks())
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except ValueError as err:  # the parser's FormParserError: not a valid form
        raise problems.invalid(["body"], f"malformed multipart body: {err}") from None
    if not form.ended:
        raise problems.invalid(["body"], "the multipart body ends before its closing boundary")
    if form.file is None:
        raise problems.invalid(["body", "file"], "field required: the form has no `file` part")
    name = None
    if form.name is not None:
        name = _utf8("name", bytes(form.name), "name").strip() or None
        if name is not None and len(name) > MAX_NAME_LENGTH:
            raise problems.invalid(["body", "name"], f"longer than {MAX_NAME_LENGTH} characters")
    fields = {key: _utf8(key, bytes(value), key) for key, value in form.options.items()}
    return Upload(bytes(form.file), form.filename or "upload", name,
                  {key: value for key, value in fields.items() if value != ""})


@dataclass
class ReadOptions:
    """The upload's fields that say how to read the file, checked."""

    csv: CsvOptions
    dtypes: dict[str, Dtype] | None
    errors: str


def read_options(upload: Upload) -> ReadOptions:
    """The upload's dialect and retyping fields as the reader takes them (422 naming the
    field when one makes no sense)."""
    fields = upload.options
    delimiter = fields.get("delimiter")
    if delimiter is not None and delimiter.lower() in ("\\t", "tab"):
        delimiter = "\t"  # a tab is hard to type into a form field
    try:
        options = CsvOptions(delimiter=delimiter, decimal=fields.get("decimal"),
                             date_format=fields.get("date_format"),
                             encoding=fields.get("encoding"))
    except DialectError as err:
        field_name = next((f for f in ("delimiter", "decimal", "date_format", "encoding")
                           if str(err).startswith(f)), "body")
        raise problems.invalid(["body", field_name], str(err)) from None
    dtypes = None
    if "dtypes" in fields:
        try:
            dtypes = _DTYPES.validate_json(fields["dtypes"])
        except ValidationError as err:
            raise problems.invalid(["body", "dtypes"], "a JSON object of column: type, the type"
                                   " one of integer, float, boolean, categorical, timestamp ("
                                   + err.errors()[0]["msg"] + ")") from None
    errors = fields.get("errors", "raise")
    if errors not in ("raise", "coerce"):
        raise problems.invalid(["body", "errors"], f"'raise' or 'coerce', not {errors!r}")
    return ReadOptions(options, dtypes, errors)
