"""Tables of the catalogue: images by content hash, items, labels per task, boards and board membership."""

from __future__ import annotations

from sqlalchemy import (Column, DateTime, ForeignKey, Index, Integer, MetaData, String, Table, Text,
                        UniqueConstraint, func)

metadata = MetaData()

images = Table(
    "images", metadata,
    Column("id", Integer, primary_key=True),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("format", String(16), nullable=False),
    Column("nbytes", Integer, nullable=False),
    Column("uri", Text, nullable=False),  # where the bytes are read from: a local path (or a copy in <home>/images)
    Column("error", Text, nullable=True),  # set when decoding failed: the image is never embedded
    Column("created_at", DateTime, server_default=func.now()),
)

items = Table(
    "items", metadata,
    Column("id", Integer, primary_key=True),
    Column("key", Text, nullable=False, unique=True),  # the user's id for the item
    Column("image_id", Integer, ForeignKey("images.id"), nullable=False),
    Column("source", Text, nullable=False),  # path or URL as given in the manifest or folder
    Column("title", Text),
    Column("description", Text),
    Column("domain", String(64)),
    Column("split", String(64)),
    Column("created_at", DateTime, server_default=func.now()),
    Column("updated_at", DateTime, server_default=func.now()),
    Index("ix_items_image", "image_id"),
    Index("ix_items_domain", "domain"),
)

labels = Table(
    "labels", metadata,
    Column("item_id", Integer, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Column("task", String(128), primary_key=True),
    Column("label", Text, nullable=False),
    Index("ix_labels_task_label", "task", "label"),
)

boards = Table(
    "boards", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    UniqueConstraint("name", name="uq_boards_name"),
)

board_items = Table(
    "board_items", metadata,
    Column("board_id", Integer, ForeignKey("boards.id", ondelete="CASCADE"), primary_key=True),
    Column("item_id", Integer, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_board_items_item", "item_id"),
)

# Engagement log: one row per impression of an item in a related-items list (viscover.catalog.engagement).
# Deleting an item deletes its events (ON DELETE CASCADE; SQLite enforces it with PRAGMA foreign_keys=ON).
events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True),
    Column("query_item_id", Integer, ForeignKey("items.id", ondelete="CASCADE"), nullable=False),  # list shown for
    Column("item_id", Integer, ForeignKey("items.id", ondelete="CASCADE"), nullable=False),  # the shown item
    Column("position", Integer, nullable=False),  # 1-based rank in the shown list
    Column("clicked", Integer, nullable=False, default=0),  # 0/1
    Column("saved", Integer, nullable=False, default=0),  # 0/1
    Column("user", Text, nullable=True),
    Column("ts", Text, nullable=True),  # the log's timestamp, as given
    Column("source", Text, nullable=True),  # traffic slice, e.g. "random" for randomly ordered lists
    Index("ix_events_query", "query_item_id"),
    Index("ix_events_item", "item_id"),
)
