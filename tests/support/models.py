"""The pydantic models a config tree is made of, for tests that check every one of them."""

from __future__ import annotations

from pydantic import BaseModel


def nested_models(model: type[BaseModel]) -> list[type[BaseModel]]:
    """`model` and every model its fields hold (directly, or inside `X | None`, lists and mappings)."""
    found = [model]
    for field in model.model_fields.values():
        for candidate in (field.annotation, *getattr(field.annotation, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                found += nested_models(candidate)
    return found
