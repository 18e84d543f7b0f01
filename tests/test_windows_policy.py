"""Windows and the venue policy, as pure domain (docs/domain.md §3 and §4).

No service here: block windows are a function of the policy, a local date and time and a party
size; the policy version is a function of the policy. Registration through the service (where
the same errors reach callers) is covered in test_layout.py.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, reject, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from seatledger.domain.errors import ErrorCode, InvalidInputError, WindowError
from seatledger.domain.policy import (
    BlockWindow,
    FallbackService,
    Service,
    TurnBand,
    VenuePolicy,
    block_window,
    local_instant,
)
from seatledger.domain.values import Window
from tests.support import DAY, SUMMER_DAY

WINTER = date(2026, 1, 15)
SPRING_FORWARD = date(2026, 3, 29)  # London: 01:00 GMT -> 02:00 BST, 01:xx does not exist
FALL_BACK = date(2026, 10, 25)  # London: 02:00 BST -> 01:00 GMT


def utc(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=UTC)


def win(day: date, start: tuple[int, int], end: tuple[int, int]) -> Window:
    return Window(start=utc(day, *start), end=utc(day, *end))


def block(
    start: str,
    party_size: int = 2,
    *,
    policy: VenuePolicy | None = None,
    day: date = DAY,
    service: str | None = None,
) -> BlockWindow:
    return block_window(
        policy or VenuePolicy(), day, time.fromisoformat(start), party_size, service
    )


# --- half-open windows ----------------------------------------------------------------------


def test_touching_windows_do_not_overlap() -> None:
    first = win(DAY, (18, 0), (19, 5))
    second = win(DAY, (19, 5), (20, 0))
    assert not first.overlaps(second)
    assert not second.overlaps(first)


def test_one_minute_of_shared_time_overlaps() -> None:
    first = win(DAY, (18, 0), (19, 5))
    second = win(DAY, (19, 4), (20, 0))
    assert first.overlaps(second)
    assert second.overlaps(first)


def test_containment_overlaps() -> None:
    outer = win(DAY, (18, 0), (22, 0))
    inner = win(DAY, (19, 0), (19, 30))
    assert outer.overlaps(inner)
    assert inner.overlaps(outer)


def test_empty_and_inverted_windows_overlap_nothing() -> None:
    everything = win(DAY, (0, 0), (23, 59))
    empty = win(DAY, (19, 0), (19, 0))
    inverted = win(DAY, (20, 0), (19, 0))
    for odd in (empty, inverted):
        assert odd.is_empty
        assert not odd.overlaps(everything)
        assert not everything.overlaps(odd)
        assert not odd.overlaps(odd)
    assert not everything.is_empty


@given(
    a=st.tuples(st.integers(0, 40), st.integers(0, 40)),
    b=st.tuples(st.integers(0, 40), st.integers(0, 40)),
)
def test_overlap_is_the_half_open_rule(a: tuple[int, int], b: tuple[int, int]) -> None:
    base = utc(DAY, 18)
    first = Window(start=base + timedelta(minutes=a[0]), end=base + timedelta(minutes=a[1]))
    second = Window(start=base + timedelta(minutes=b[0]), end=base + timedelta(minutes=b[1]))
    # shared minutes of [a0, a1) and [b0, b1), counted by brute force
    shared = set(range(a[0], a[1])) & set(range(b[0], b[1]))
    assert first.overlaps(second) == bool(shared)
    assert first.overlaps(second) == second.overlaps(first)


def test_windows_store_utc_and_refuse_naive_instants() -> None:
    paris = datetime(2026, 5, 15, 20, 0, tzinfo=ZoneInfo("Europe/Paris"))
    window = Window(start=paris, end=paris + timedelta(hours=1))
    assert window.start == utc(SUMMER_DAY, 18)
    assert window.start.tzinfo == UTC
    assert str(window) == "[2026-05-15T18:00:00Z, 2026-05-15T19:00:00Z)"
    with pytest.raises(ValidationError):
        Window(start=datetime(2026, 5, 15, 18, 0), end=datetime(2026, 5, 15, 19, 0))


# --- local time and daylight saving ---------------------------------------------------------


def test_a_london_1900_booking_is_1900z_in_january_and_1800z_in_may() -> None:
    january = block("19:00", day=WINTER)
    may = block("19:00", day=SUMMER_DAY)
    assert january.start_at == utc(WINTER, 19)
    assert may.start_at == utc(SUMMER_DAY, 18)
    # same local booking, same length, one hour apart in UTC
    assert january.window.end - january.window.start == may.window.end - may.window.start
    assert may.window == win(SUMMER_DAY, (18, 0), (19, 5))


def test_a_nonexistent_local_time_in_the_dst_gap_is_invalid_input() -> None:
    with pytest.raises(InvalidInputError) as caught:
        block("01:30", day=SPRING_FORWARD)
    err = caught.value
    assert err.code == ErrorCode.INVALID_INPUT
    assert err.details["errors"][0]["field"] == "start_time"
    assert "DST" in err.message
    # the minute before the gap and the first minute after it are fine
    assert local_instant(VenuePolicy(), SPRING_FORWARD, time(0, 59)) == utc(SPRING_FORWARD, 0, 59)
    assert local_instant(VenuePolicy(), SPRING_FORWARD, time(2, 0)) == utc(SPRING_FORWARD, 1, 0)


def test_durations_are_absolute_across_the_autumn_change() -> None:
    # 00:30 BST on the night the clocks go back: 65 minutes later is 00:35Z, whatever the
    # wall clock shows (it reads 01:35 BST, then 01:00 GMT again, ...)
    night = block("00:30", day=FALL_BACK)
    assert night.fallback
    assert night.start_at == utc(date(2026, 10, 24), 23, 30)
    assert night.window.end - night.window.start == timedelta(minutes=65)


def test_the_service_end_is_local_time_in_summer_too() -> None:
    # dinner ends 22:00 BST = 21:00Z: a 21:50 BST start is clamped to 21:00Z
    late = block("21:50", day=SUMMER_DAY)
    assert late.clamped
    assert late.window == win(SUMMER_DAY, (20, 50), (21, 0))


# --- block windows --------------------------------------------------------------------------


def test_default_dinner_window_for_two() -> None:
    two = block("19:00")
    assert two.service == "dinner"
    assert not two.fallback and not two.clamped
    assert two.start_at == utc(DAY, 19)
    assert two.dining_end_at == utc(DAY, 20)
    assert two.window == win(DAY, (19, 0), (20, 5))


def test_block_window_includes_both_buffers() -> None:
    policy = VenuePolicy(pre_buffer_minutes=15, post_buffer_minutes=10)
    four = block("19:00", 4, policy=policy)
    # [start - pre, start + dining(75) + post)
    assert four.window == win(DAY, (18, 45), (20, 25))
    assert four.start_at == utc(DAY, 19)
    assert four.dining_end_at == utc(DAY, 20, 15)


@pytest.mark.parametrize(
    ("party_size", "minutes"),
    [(1, 60), (2, 60), (3, 75), (4, 75), (5, 85), (6, 85), (7, 90), (8, 90)],
)
def test_turn_bands_are_inclusive_upper_bounds(party_size: int, minutes: int) -> None:
    result = block("18:00", party_size)
    assert result.dining_end_at - result.start_at == timedelta(minutes=minutes)


@pytest.mark.parametrize(("party_size", "start", "minutes"), [(12, "18:00", 90), (9, "12:30", 85)])
def test_sizes_above_the_last_band_use_the_last_band(
    party_size: int, start: str, minutes: int
) -> None:
    result = block(start, party_size)
    assert result.dining_end_at - result.start_at == timedelta(minutes=minutes)


def test_bands_are_sorted_and_the_last_band_is_the_largest_size() -> None:
    policy = VenuePolicy(
        services=(
            Service(
                name="dinner",
                start=time(17),
                end=time(23),
                turn_bands=(
                    TurnBand(max_party_size=6, minutes=120),
                    TurnBand(max_party_size=2, minutes=30),
                ),
            ),
        )
    )
    assert block("18:00", 2, policy=policy).dining_end_at == utc(DAY, 18, 30)
    assert block("18:00", 5, policy=policy).dining_end_at == utc(DAY, 20)
    assert block("18:00", 20, policy=policy).dining_end_at == utc(DAY, 20)


def test_overrun_clamp_at_2150_and_rejection_at_2156() -> None:
    late = block("21:50")
    assert late.clamped
    assert late.window == win(DAY, (21, 50), (22, 0))
    assert late.dining_end_at == utc(DAY, 21, 55)  # block end minus the post-buffer

    with pytest.raises(WindowError) as caught:
        block("21:56")
    err = caught.value
    assert err.code == ErrorCode.SERVICE_OVERRUN
    assert err.details["service"] == "dinner"
    assert err.details["service_end"] == "22:00"
    assert err.details["start_time"] == "21:56"
    assert err.details["post_buffer_minutes"] == 5


def test_the_clamp_boundary_is_exact() -> None:
    # 21:54: dining ends 21:55, one minute after the start -> accepted; 21:55 -> nothing left
    assert block("21:54").dining_end_at == utc(DAY, 21, 55)
    with pytest.raises(WindowError) as caught:
        block("21:55")
    assert caught.value.code == ErrorCode.SERVICE_OVERRUN
    # an early dinner that ends before 22:00 is not clamped
    assert not block("20:00").clamped


def test_lunch_allows_overrun() -> None:
    late_lunch = block("14:50")
    assert late_lunch.service == "lunch"
    assert not late_lunch.clamped
    assert late_lunch.window == win(DAY, (14, 50), (15, 55))


def test_services_are_half_open_in_local_time() -> None:
    assert block("17:00").service == "dinner"
    assert block("12:00").service == "lunch"
    end_of_lunch = block("15:00")
    assert end_of_lunch.fallback
    assert end_of_lunch.service == "fallback"


def test_a_start_outside_every_service_uses_the_fallback() -> None:
    policy = VenuePolicy(
        fallback_service=FallbackService(
            name="all-day", turn_bands=(TurnBand(max_party_size=10, minutes=45),)
        )
    )
    morning = block("10:00", 3, policy=policy)
    assert morning.fallback
    assert morning.service == "all-day"
    assert not morning.clamped
    assert morning.window == win(DAY, (10, 0), (10, 50))


def test_strict_mode_rejects_a_start_outside_every_service() -> None:
    strict = VenuePolicy(strict_services=True)
    with pytest.raises(WindowError) as caught:
        block("10:00", policy=strict)
    err = caught.value
    assert err.code == ErrorCode.SERVICE_NOT_FOUND
    assert err.details["start_time"] == "10:00"
    assert [s["name"] for s in err.details["services"]] == ["lunch", "dinner"]
    # inside a service, strict mode changes nothing
    assert block("19:00", policy=strict) == block("19:00")


def test_an_unknown_named_service_is_service_not_found() -> None:
    with pytest.raises(WindowError) as caught:
        block("19:00", service="brunch")
    assert caught.value.code == ErrorCode.SERVICE_NOT_FOUND
    assert caught.value.details == {"service": "brunch", "services": ["lunch", "dinner"]}


def test_a_named_service_is_used_even_outside_its_hours() -> None:
    named = block("16:00", 3, service="lunch")
    assert named.service == "lunch"
    assert not named.fallback
    assert named.window == win(DAY, (16, 0), (17, 20))


# --- policy version -------------------------------------------------------------------------


def _leaf_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for key in sorted(value) for p in _leaf_paths(value[key], (*prefix, key))]
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _leaf_paths(item, (*prefix, i))]
    return [prefix]


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def _set(data: Any, path: tuple[Any, ...], value: Any) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


def _nudged(path: tuple[Any, ...], value: Any) -> Any:
    """A different, still valid value for one leaf of the serialised policy."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if path == ("timezone",):
        return "Europe/Paris"
    if path[-1] in ("start", "end", "service_day_starts_at"):
        moved = datetime.combine(DAY, time.fromisoformat(value)) + timedelta(minutes=1)
        return moved.time().isoformat()
    assert isinstance(value, str)
    return value + "-x"


DEFAULT_DUMP = VenuePolicy().model_dump(mode="json")
LEAVES = _leaf_paths(DEFAULT_DUMP)


def test_the_policy_has_nested_fields_to_hash() -> None:
    # guards the parametrisation below against silently shrinking
    nested = [p for p in LEAVES if len(p) > 2]
    assert len(LEAVES) > 40
    assert ("services", 1, "turn_bands", 3, "minutes") in nested
    assert ("fallback_service", "turn_bands", 0, "minutes") in nested


@pytest.mark.parametrize("path", LEAVES, ids=lambda p: ".".join(map(str, p)))
def test_changing_any_single_field_changes_the_version(path: tuple[Any, ...]) -> None:
    data = VenuePolicy().model_dump(mode="json")
    _set(data, path, _nudged(path, _get(data, path)))
    changed = VenuePolicy.model_validate(data)
    assert changed != VenuePolicy()
    assert changed.version != VenuePolicy().version


SCALAR_FIELDS = (
    "pre_buffer_minutes",
    "post_buffer_minutes",
    "adjacency_min_party_size",
    "slack_budget",
    "max_combination_size",
)


@st.composite
def policies(draw: st.DrawFn) -> VenuePolicy:
    """Random valid policies (not only the default one)."""
    bands = draw(
        st.lists(
            st.tuples(st.integers(1, 12), st.integers(15, 240)),
            min_size=1,
            max_size=4,
            unique_by=lambda band: band[0],
        )
    )
    start_hour = draw(st.integers(6, 15))
    return VenuePolicy(
        timezone=draw(st.sampled_from(["Europe/London", "America/New_York", "Asia/Tokyo"])),
        services=(
            Service(
                name=draw(st.sampled_from(["dinner", "supper", "service"])),
                start=time(start_hour),
                end=time(start_hour + draw(st.integers(1, 8))),
                allow_overrun=draw(st.booleans()),
                turn_bands=tuple(TurnBand(max_party_size=s, minutes=m) for s, m in bands),
            ),
        ),
        pre_buffer_minutes=draw(st.integers(0, 30)),
        post_buffer_minutes=draw(st.integers(0, 30)),
        strict_services=draw(st.booleans()),
        adjacency_required=draw(st.booleans()),
        adjacency_min_party_size=draw(st.integers(1, 6)),
        adjacency_relaxable=draw(st.booleans()),
        slack_budget=draw(st.integers(0, 6)),
        max_combination_size=draw(st.integers(1, 5)),
    )


@settings(max_examples=150, deadline=None)
@given(policy=policies(), data=st.data())
def test_any_mutation_of_any_field_changes_the_version(
    policy: VenuePolicy, data: st.DataObject
) -> None:
    original = policy.model_dump(mode="json")
    version = policy.version  # computed (and cached) before the mutation
    path = data.draw(st.sampled_from(_leaf_paths(original)), label="path")
    old = _get(original, path)
    if isinstance(old, bool):
        new: Any = not old
    elif isinstance(old, int):
        new = data.draw(st.integers(0, 300).filter(lambda v: v != old), label="int")
    else:
        new = _nudged(path, old)
    mutated = policy.model_dump(mode="json")
    _set(mutated, path, new)
    try:
        changed = VenuePolicy.model_validate(mutated)
    except ValidationError:
        reject()
    assume(changed.model_dump(mode="json") != original)  # e.g. re-sorted into the same bands
    assert changed.version != version


@settings(max_examples=50, deadline=None)
@given(policy=policies(), field=st.sampled_from(SCALAR_FIELDS), delta=st.integers(1, 3))
def test_model_copy_with_an_update_gets_a_new_version(
    policy: VenuePolicy, field: str, delta: int
) -> None:
    # regression: the cached version used to be copied along with the other attributes, so
    # policy.model_copy(update=...) kept the old version and ChangePolicy became a no-op
    version = policy.version
    changed = policy.model_copy(update={field: getattr(policy, field) + delta})
    assert changed.version != version
    assert changed.version == VenuePolicy.model_validate(changed.model_dump()).version


@settings(max_examples=100, deadline=None)
@given(policy=policies())
def test_equal_policies_have_equal_versions(policy: VenuePolicy) -> None:
    rebuilt = VenuePolicy.model_validate(policy.model_dump(mode="json"))
    assert rebuilt == policy
    assert rebuilt.version == policy.version
    assert policy.model_copy().version == policy.version
    # bands given in another order are the same policy
    service = policy.services[0]
    reordered = policy.model_copy(
        update={
            "services": (
                Service(
                    name=service.name,
                    start=service.start,
                    end=service.end,
                    allow_overrun=service.allow_overrun,
                    turn_bands=tuple(reversed(service.turn_bands)),
                ),
            )
        }
    )
    assert reordered.version == policy.version


def test_the_version_is_a_stable_sha256_of_the_canonical_policy() -> None:
    assert VenuePolicy().version == VenuePolicy().version
    assert len(VenuePolicy().version) == 64
    assert int(VenuePolicy().version, 16) >= 0
