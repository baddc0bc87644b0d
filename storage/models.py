"""peewee models. Item JSON is exactly what clients see; bookkeeping lives in columns."""
from __future__ import annotations

import json

from peewee import AutoField, BooleanField, CharField, CompositeKey, IntegerField, Model, TextField

from storage.db import db

# One encoder for every value (json.dumps with options builds a new encoder per call).
_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class JSONText(TextField):
    """JSON kept as text: key order survives (PostgreSQL's JSONB re-sorts keys) and U+0000 is
    stored escaped (JSONB rejects it), so an item reads back exactly as the client sent it."""

    def db_value(self, value):
        return None if value is None else _compact(value)

    def python_value(self, value):
        return None if value is None else json.loads(value)


class BaseModel(Model):
    class Meta:
        database = db


class SchemaVersion(BaseModel):
    version = IntegerField()

    class Meta:
        table_name = "schema_version"


class ResponseRecord(BaseModel):
    """One response. `chat_fragment` holds the upstream chat messages its own input and output
    contribute (JSON objects joined by commas), and `responses_fragment` the same turn as a
    Responses upstream's input items, so a chain's upstream prefix is one string join of its
    ancestors' fragments for either upstream kind, whatever its depth."""

    id = CharField(primary_key=True, max_length=64)
    tenant = CharField(max_length=64, default="default")
    created_at = IntegerField()
    status = CharField(max_length=16)
    model = TextField()
    previous_response_id = CharField(max_length=64, null=True)  # partial index: migration v4
    conversation_id = CharField(max_length=64, null=True)
    depth = IntegerField(default=0)
    deleted = BooleanField(default=False)
    response = JSONText(null=True)          # the Response object as returned to clients
    request = JSONText(null=True)           # the effective request (tools, tool_choice, text, …)
    loaded_tools = JSONText(default=list)   # tools loaded by tool_search_output along the chain
    chat_fragment = TextField(default="")
    fragment_version = IntegerField(default=0)
    # Checkpoints: every CHECKPOINT_EVERY levels a response also stores `segment` (the fragments of
    # its last CHECKPOINT_EVERY levels, its own included) and `skip_parent` (the ancestor just
    # before them), so a chain walk reads about depth/CHECKPOINT_EVERY rows instead of depth.
    segment = TextField(null=True)
    skip_parent = CharField(max_length=64, null=True)
    # Schema v5: the responses upstream's fragment and checkpoint segment; NULL in rows written
    # before, which are then re-translated from their items when a chain is continued.
    responses_fragment = TextField(null=True)
    responses_segment = TextField(null=True)
    # Schema v6: the worker serving a response while it is in progress (see WorkerRecord).
    worker = CharField(max_length=128, null=True)
    # Schema v8: a background response someone asked to cancel (its worker polls for this).
    cancel_requested = BooleanField(null=True)   # NULL: not asked; rows are written by raw inserts

    class Meta:
        table_name = "responses"


class ItemRecord(BaseModel):
    """An input, output or conversation item. Ids are the public ids clients see and may repeat
    (clients replay items), so the row key is `seq`, which also orders items."""

    seq = AutoField()
    item_id = TextField()                 # clients' own ids are kept whatever their length
    tenant = CharField(max_length=64, default="default")
    response_id = CharField(max_length=64, null=True, index=True)
    conversation_id = CharField(max_length=64, null=True)  # partial index: migration v4
    kind = CharField(max_length=16)          # input | output | conversation
    position = IntegerField(default=0)
    created_at = IntegerField()
    data = JSONText()

    class Meta:
        table_name = "items"


class ConversationRecord(BaseModel):
    id = CharField(primary_key=True, max_length=64)
    tenant = CharField(max_length=64, default="default", index=True)
    created_at = IntegerField()
    metadata = JSONText(default=dict)
    deleted = BooleanField(default=False)

    class Meta:
        table_name = "conversations"


class SecretRecord(BaseModel):
    """Gateway-generated secrets shared by every worker and instance (e.g. the reasoning key)."""

    name = CharField(primary_key=True, max_length=64)
    value = TextField()

    class Meta:
        table_name = "gateway_secrets"


class WorkerRecord(BaseModel):
    """A gateway worker process and its lease. A response in progress names its worker; once the
    worker's lease has run out (or its process is gone) the response is marked failed, so a worker
    killed outright never leaves responses in progress forever."""

    id = CharField(primary_key=True, max_length=128)
    host = CharField(max_length=255)
    pid = IntegerField()
    started_at = IntegerField()
    lease_until = IntegerField()

    class Meta:
        table_name = "gateway_workers"




class EventRecord(BaseModel):
    """The logged stream of a background response, one row per event, so any worker or instance
    sharing the database can replay it (`starting_after`) and follow it to its terminal event."""

    response_id = CharField(max_length=64)
    seq = IntegerField()                      # the event's sequence_number
    data = JSONText()

    class Meta:
        table_name = "response_events"
        primary_key = CompositeKey("response_id", "seq")


ALL_MODELS = (SchemaVersion, ResponseRecord, ItemRecord, ConversationRecord, SecretRecord, WorkerRecord, EventRecord)
