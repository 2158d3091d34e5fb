"""The hand-spliced JSON of views.py parses, and validates against the response models the OpenAPI
document publishes, whatever the stored text holds."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from clickstream.codec import encode_json
from clickstream.models import BatchPage, EventView, SessionView, SessionWithBatch
from clickstream.records import StoredEvent, StoredSession
from clickstream.views import render_event, render_page, render_session

text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=8,
)
json_objects = st.dictionaries(text, json_values, max_size=4)


# What input validation lets through: printable text (no control characters), valid Unicode.
identifiers = st.text(st.characters(exclude_categories=["Cc", "Cs"]), min_size=1, max_size=30)


@st.composite
def documents(draw: st.DrawFn) -> str:
    results = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "object_id": identifiers,
                    "rank": st.none() | st.floats(-1e6, 1e6),
                    "meta": st.none() | json_objects,
                    "team": st.none() | identifiers,
                }
            ),
            max_size=3,
        )
    )
    members = {
        "search_query": draw(identifiers | json_objects),
        "search_results": results,
        "search_meta": draw(st.none() | json_objects),
        "payload_filter": draw(st.none() | json_objects),
        "sort_by": draw(
            st.none()
            | st.fixed_dictionaries(
                {"field": identifiers, "order": st.sampled_from(["asc", "desc"]), "force_not_payload": st.booleans()}
            )
        ),
    }
    return encode_json(members)


events = st.builds(
    StoredEvent,
    event_id=identifiers,
    object_id=identifiers,
    event_type=identifiers,
    created_at=st.integers(0, 10**13 - 1),
    meta=st.none() | json_objects.map(encode_json),
)
sessions = st.builds(
    StoredSession,
    batch_id=identifiers,
    session_number=st.integers(1, 2**53),
    session_id=identifiers,
    created_at=st.integers(0, 10**13 - 1),
    user_id=st.none() | identifiers,
    is_irrelevant=st.booleans(),
    is_payload_search=st.booleans(),
    document=documents(),
    experiment=st.none() | st.fixed_dictionaries({"id": identifiers, "variant": identifiers}).map(encode_json),
)


def expected_session(session: StoredSession, stored_events: list[StoredEvent]) -> dict[str, Any]:
    return {
        "session_number": session.session_number,
        "session_id": session.session_id,
        **json.loads(session.document),
        "experiment": None if session.experiment is None else json.loads(session.experiment),
        "user_id": session.user_id,
        "created_at": session.created_at,
        "is_irrelevant": session.is_irrelevant,
        "is_payload_search": session.is_payload_search,
        "events": [json.loads(render_event(event)) for event in stored_events],
    }


@settings(max_examples=60, deadline=None)
@given(event=events)
def test_an_event_renders_as_its_model(event: StoredEvent) -> None:
    rendered = json.loads(render_event(event))
    assert EventView.model_validate(rendered).model_dump() == rendered
    assert rendered["meta"] == (None if event.meta is None else json.loads(event.meta))


@settings(max_examples=60, deadline=None)
@given(session=sessions, stored_events=st.lists(events, max_size=3))
def test_a_session_renders_as_its_model_with_every_stored_member(
    session: StoredSession, stored_events: list[StoredEvent]
) -> None:
    rendered = json.loads(render_session(session, stored_events))
    assert rendered == expected_session(session, stored_events)
    SessionView.model_validate(rendered)
    with_batch = json.loads(render_session(session, stored_events, with_batch_id=True))
    assert with_batch == {"batch_id": session.batch_id, **rendered}
    SessionWithBatch.model_validate(with_batch)


@settings(max_examples=30, deadline=None)
@given(
    batch_id=identifiers,
    page=st.lists(sessions, max_size=3),
    has_more=st.booleans(),
)
def test_a_page_renders_as_its_model(batch_id: str, page: list[StoredSession], has_more: bool) -> None:
    texts = [render_session(session, []) for session in page]
    last = page[-1].session_number if page else None
    rendered = json.loads(render_page(batch_id, last, has_more, texts))
    BatchPage.model_validate(rendered)
    assert rendered["batch_id"] == batch_id
    assert rendered["last_number"] == last
    assert rendered["has_more"] is has_more
    assert [s["session_id"] for s in rendered["sessions"]] == [s.session_id for s in page]
