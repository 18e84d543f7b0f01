"""``Frozen.updated`` is ``model_copy(update=...)``: equal values, the same set fields, the
same field order, no validation, the original untouched; classes with their own
``model_copy`` (the policy's cached version) or private values get ``model_copy`` itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, PrivateAttr

from seatledger.domain.policy import VenuePolicy
from seatledger.domain.service_day.state import BookingState, HoldState, SeatedTable
from seatledger.domain.values import Frozen, Window

START = datetime(2026, 3, 1, 18, tzinfo=UTC)
WINDOW = Window(start=START, end=START + timedelta(hours=2))

names = st.text(min_size=1, max_size=6)
table_ids = st.lists(names, max_size=3).map(tuple)


def same_copy(model: BaseModel, update: dict[str, Any]) -> None:
    expected = model.model_copy(update=update)
    before = (dict(vars(model)), set(model.model_fields_set))
    copied = model.updated(**update)  # type: ignore[attr-defined]
    assert type(copied) is type(expected)
    assert copied == expected
    assert copied.model_fields_set == expected.model_fields_set
    assert list(vars(copied).items()) == list(vars(expected).items())
    assert copied.__pydantic_extra__ == expected.__pydantic_extra__
    assert copied.__pydantic_private__ == expected.__pydantic_private__
    assert copied is not model and copied.model_fields_set is not model.model_fields_set
    assert (dict(vars(model)), set(model.model_fields_set)) == before
    if not any(isinstance(value, dict) for value in vars(copied).values()):
        assert hash(copied) == hash(expected)


def booking(**fields: Any) -> BookingState:
    return BookingState(
        booking_id="b1",
        party_size=2,
        start_at=START,
        window=WINDOW,
        service="dinner",
        fallback=False,
        clamped=False,
        **fields,
    )


@given(
    preset=st.fixed_dictionaries(
        {}, optional={"status": st.sampled_from(["pending", "confirmed"]), "zone_id": names}
    ),
    update=st.fixed_dictionaries(
        {},
        optional={
            "tables": table_ids,
            "members": table_ids.map(
                lambda ids: tuple(SeatedTable(table_id=t, assignment_id="a" + t) for t in ids)
            ),
            "zone_id": st.none() | names,
            "merge_group_id": st.none() | names,
            "status": st.sampled_from(["pending", "confirmed", "cancelled", "no_show"]),
            "last_change_version": st.integers(0, 10**6),
            "party_size": st.integers(1, 12),
        },
    ),
)
def test_a_booking_copy_equals_model_copy(preset: dict[str, Any], update: dict[str, Any]) -> None:
    same_copy(booking(**preset), update)


@given(
    update=st.fixed_dictionaries(
        {},
        optional={
            "status": st.sampled_from(["live", "consumed", "released", "expired"]),
            "closed_by": st.none() | names,
            "extended_by": st.none() | names,
            "expires_at": st.integers(0, 900).map(lambda s: START + timedelta(seconds=s)),
        },
    )
)
def test_a_hold_copy_equals_model_copy(update: dict[str, Any]) -> None:
    hold = HoldState(
        hold_id="h1",
        booking_id="b1",
        tables=("t1", "t2"),
        zone_id="main",
        window=WINDOW,
        placed_at=START,
        expires_at=START + timedelta(minutes=3),
        actor_id="host",
        source="manual",
        policy_version=None,
        zone_ids=None,
        adjacency=None,
        table_facts={},
        adjacency_required=None,
    )
    same_copy(hold, update)


def test_no_validation_as_model_copy_and_copies_of_copies() -> None:
    """Neither validates (apply never does): a value the model would reject goes in as is."""
    same_copy(booking(), {"party_size": "not a number"})
    same_copy(booking().updated(status="confirmed"), {"tables": ("t9",)})
    same_copy(booking(), {})


def test_a_model_with_its_own_model_copy_or_private_values_gets_model_copy() -> None:
    policy = VenuePolicy(slack_budget=3)
    _ = policy.version  # cached in __dict__: the policy's model_copy drops it
    copied = policy.updated(adjacency_required=not policy.adjacency_required)
    assert "version" not in vars(copied)
    assert copied.version != policy.version

    class Secret(Frozen):
        value: int
        _note: str = PrivateAttr(default="kept")

    same_copy(Secret(value=1), {"value": 2})
