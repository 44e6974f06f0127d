"""The client API's request parser under any input (hypothesis).

Any frame (bytes or text), any JSON value, and request-shaped objects with any values: each step
the proxy runs on a message (:mod:`backend.proxy.messages`) returns a well-typed value or raises
:class:`RequestError` with one of the API's codes, never another exception, and the
``request_id`` it echoes can always be written back in a reply. The examples are derandomized,
so every run tries the same ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from backend.feed import (
    DEPTH_LEVELS,
    INVALID_ACTION,
    INVALID_JSON,
    INVALID_MODE,
    INVALID_PARAMETERS,
    MODES,
)
from backend.proxy import replies
from backend.proxy.errors import RequestError
from backend.proxy.messages import (
    MAX_NAME_LENGTH,
    action_of,
    decode,
    parse_mode,
    parse_subscribe,
    parse_unsubscribe,
    request_id,
)

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None)
CODES = {INVALID_JSON, INVALID_ACTION, INVALID_MODE, INVALID_PARAMETERS}

# -- inputs ---------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
names = st.text(max_size=70) | st.sampled_from(["SBIN", "NSE", " ", "", "x" * MAX_NAME_LENGTH])
modes = st.sampled_from([1, 2, 3, 0, 4, 2.0, True, "LTP", " quote ", "Depth", "3", "full"])
entries = st.fixed_dictionaries(
    {}, optional={"symbol": names | json_values, "exchange": names, "mode": modes | json_values}
)
#: Objects shaped like the API's requests, each field any value of its kind or any JSON.
requests = st.fixed_dictionaries(
    {},
    optional={
        "action": st.sampled_from(["subscribe", "UNSUBSCRIBE", "ping", "authenticate"])
        | json_values,
        "type": st.text(max_size=12) | json_values,
        "request_id": st.text(max_size=300) | json_values,
        "mode": modes | json_values,
        "depth": st.sampled_from([DEPTH_LEVELS, 5.0, 20, False]) | json_values,
        "symbols": st.lists(entries | json_values, max_size=4) | json_values,
        "symbol": names | json_values,
        "exchange": names | json_values,
    },
)
#: Text that trips JSON readers: deep nesting, long numbers, numbers past a float's range.
hostile = (
    st.builds(lambda n: '{"a":' * n + "1" + "}" * n, st.integers(1, 2000))
    | st.builds(
        lambda field, n: f'{{"{field}": {"[" * n}{"]" * n}}}',
        st.sampled_from(["request_id", "mode", "symbols", "depth"]),
        st.integers(1, 2000),
    )
    | st.builds(lambda n: '{"request_id": ' + "9" * n + "}", st.integers(90, 5000))
    | st.sampled_from(['{"request_id": 1e400}', '{"mode": -0.0}', '{"mode": NaN}', "Infinity"])
)
texts = json_values.map(json.dumps) | requests.map(json.dumps) | hostile | st.text(max_size=300)
frames = (
    texts
    | texts.map(str.encode)
    | st.binary(max_size=300)
    | texts.map(lambda text: text.encode("utf-16"))
)

# -- the parser -----------------------------------------------------------------------------------


def outcome(parse: Callable[[Any], Any], value: Any) -> Any:
    """What ``parse(value)`` returns, or None when it refuses with one of the API's codes."""
    try:
        return parse(value)
    except RequestError as exc:
        assert exc.code in CODES and isinstance(exc.message, str), exc.code
        return None


def names_ok(symbol: Any, exchange: Any) -> bool:
    return all(
        isinstance(n, str) and n.strip() and len(n) <= MAX_NAME_LENGTH for n in (symbol, exchange)
    )


@FUZZ
@given(frames)
def test_any_frame_is_a_request_or_a_typed_error(frame):
    message = outcome(decode, frame)
    if message is None:
        return
    assert isinstance(message, dict)
    echoed = outcome(request_id, message)
    replies.encode(replies.error(INVALID_PARAMETERS, "refused", echoed))  # it can be echoed
    action = outcome(action_of, message)
    assert action is None or isinstance(action, str)
    assert outcome(lambda m: parse_mode(m.get("mode")), message) in (None, *MODES)
    subscribe = outcome(parse_subscribe, message)
    if subscribe is not None:
        assert subscribe.mode in MODES and subscribe.depth == DEPTH_LEVELS
        assert subscribe.symbols and all(names_ok(*pair) for pair in subscribe.symbols)
    unsubscribe = outcome(parse_unsubscribe, message)
    if unsubscribe is not None:
        assert unsubscribe.subscriptions
        for symbol, exchange, mode in unsubscribe.subscriptions:
            assert names_ok(symbol, exchange) and mode in MODES
