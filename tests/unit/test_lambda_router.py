"""LambdaRouter.invoke on its own: errors as Lambda reports them, timeouts, environment layers."""

from __future__ import annotations

import json
import os
import textwrap
import threading
import uuid
from pathlib import Path

import pytest

from maaskit.local.lambda_environment import ENVIRON, EnvironOverlay
from maaskit.local.lambda_router import LambdaRouter, UnknownFunctionError
from maaskit.local.request_ids import new_request_id


def _function(tmp_path: Path, source: str, name: str = "fn") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "app.py").write_text(textwrap.dedent(source))
    return folder


def test_handler_exception_becomes_lambda_error_document(tmp_path: Path) -> None:
    # Given a handler that raises its own exception class
    code = _function(
        tmp_path,
        """
        class ModelMissing(Exception):
            pass

        def lambda_handler(event, context):
            raise ModelMissing("no model called " + event["name"])
        """,
    )
    router = LambdaRouter()
    router.register("fn", code)

    # When it is invoked
    invocation = router.invoke("fn", {"name": "digits"})

    # Then the payload is the error document Step Functions matches on
    assert invocation.errored
    document = json.loads(invocation.payload)
    assert document["errorType"] == "ModelMissing"
    assert document["errorMessage"] == "no model called digits"
    assert any("raise ModelMissing" in frame for frame in document["stackTrace"])
    assert router.failures[-1] is invocation


def test_unserialisable_reply_is_a_marshal_error(tmp_path: Path) -> None:
    code = _function(tmp_path, "def lambda_handler(event, context):\n    return {1, 2}\n")
    router = LambdaRouter()
    router.register("fn", code)

    invocation = router.invoke("fn", {})

    assert invocation.error_type == "Runtime.MarshalError"


@pytest.mark.parametrize(
    ("reply", "marshals"),
    [
        ({"statusCode": 200, "headers": {"A": "b"}, "body": "x", "isBase64Encoded": False}, True),
        ({"nested": [1, 2.5, None, True, {"deep": ["s"]}]}, True),
        ({"tuple": (1, 2)}, True),  # json.dumps takes a tuple as a list
        ({1: "a key json.dumps turns into a string"}, True),
        ({"set": {1, 2}}, False),
        ({"bytes": b"x"}, False),
        ({"object": object()}, False),
    ],
)
def test_a_reply_is_marshalled_as_json_dumps_would(
    tmp_path: Path, reply: object, marshals: bool
) -> None:
    # Given a handler returning a reply the fast type walk may or may not vouch for
    code = _function(tmp_path, "def lambda_handler(event, context):\n    return event['reply']\n")
    router = LambdaRouter()
    router.register("fn", code)
    # When it is invoked
    invocation = router.invoke("fn", {"reply": reply})
    # Then it fails to marshal exactly when json.dumps fails, and the payload is json.dumps'
    assert invocation.errored is not marshals
    if marshals:
        assert invocation.payload == json.dumps(reply)
        assert invocation.value is reply
    else:
        assert invocation.error_type == "Runtime.MarshalError"


def test_a_reply_that_contains_itself_is_a_marshal_error(tmp_path: Path) -> None:
    code = _function(
        tmp_path,
        "def lambda_handler(event, context):\n    reply = {}\n    reply['me'] = reply\n    return reply\n",
    )
    router = LambdaRouter()
    router.register("fn", code)

    assert router.invoke("fn", {}).error_type == "Runtime.MarshalError"


def test_request_ids_are_unique_version_4_uuids_also_in_a_forked_child() -> None:
    ids = [new_request_id() for _ in range(1000)]
    assert len(set(ids)) == len(ids)
    for value in ids[:10]:
        parsed = uuid.UUID(value)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, value)
    if not hasattr(os, "fork"):
        return
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover  # the child reports through the pipe
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    from_child = os.read(read, 100).decode()
    os.close(read)
    mine = new_request_id()
    assert from_child[:24] != mine[:24]  # another random part, not this process's count


def test_import_failure_is_reported_and_retried_next_time(tmp_path: Path) -> None:
    # Given a module that fails to import
    code = _function(tmp_path, "import not_a_module_anywhere\n")
    router = LambdaRouter()
    router.register("fn", code)

    # When invoked, then Lambda's import error comes back
    assert router.invoke("fn", {}).error_type == "Runtime.ImportModuleError"

    # and once the code is fixed, the next invocation imports it again
    (code / "app.py").write_text("def lambda_handler(event, context):\n    return 'fixed'\n")
    assert router.invoke("fn", {}).result() == "fixed"


def test_overrunning_the_timeout_fails_as_on_aws(tmp_path: Path) -> None:
    code = _function(
        tmp_path,
        """
        import time

        def lambda_handler(event, context):
            time.sleep(0.3)
            return context.get_remaining_time_in_millis()
        """,
    )
    strict = LambdaRouter()
    strict.register("fn", code, timeout_s=0.1)
    lenient = LambdaRouter(enforce_timeouts=False)
    lenient.register("fn", code, timeout_s=0.1)

    assert strict.invoke("fn", {}).error_type == "Sandbox.Timedout"
    assert lenient.invoke("fn", {}).result() == 0


def test_each_router_imports_its_own_copy_of_the_module(tmp_path: Path) -> None:
    # Given a handler that counts its calls in a module global
    code = _function(
        tmp_path,
        """
        CALLS = []

        def lambda_handler(event, context):
            CALLS.append(1)
            return len(CALLS)
        """,
    )
    first, second = LambdaRouter(), LambdaRouter()
    first.register("fn", code)
    second.register("fn", code)

    # Then each router is a separate sandbox (its own cold start)
    assert [first.invoke("fn", {}).result() for _ in range(3)] == [1, 2, 3]
    assert second.invoke("fn", {}).result() == 1


def test_unknown_function_is_refused() -> None:
    with pytest.raises(UnknownFunctionError, match="nope"):
        LambdaRouter().invoke("nope", {})


def test_environment_layers_restore_the_original_values(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a variable that exists before any invocation
    monkeypatch.setenv("MAASKIT_TEST_VAR", "original")
    monkeypatch.delenv("MAASKIT_TEST_OTHER", raising=False)
    overlay = EnvironOverlay()
    first_entered, release_first = threading.Event(), threading.Event()
    seen: list[str | None] = []

    def first() -> None:
        with overlay.applied({"MAASKIT_TEST_VAR": "first", "MAASKIT_TEST_OTHER": "x"}):
            first_entered.set()
            release_first.wait(5)
            seen.append(os.environ.get("MAASKIT_TEST_VAR"))

    # When two invocations overlap and the later one leaves first
    thread = threading.Thread(target=first)
    thread.start()
    first_entered.wait(5)
    with overlay.applied({"MAASKIT_TEST_VAR": "second"}):
        assert os.environ["MAASKIT_TEST_VAR"] == "second"
    assert os.environ["MAASKIT_TEST_VAR"] == "first"  # the still-running layer shows again
    release_first.set()
    thread.join(5)

    # Then, with none running, the process environment is what it was
    assert seen == ["first"]
    assert os.environ["MAASKIT_TEST_VAR"] == "original"
    assert "MAASKIT_TEST_OTHER" not in os.environ


def test_common_environment_is_kept_and_each_function_still_sees_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two functions sharing one variable and differing in another
    monkeypatch.delenv("SHARED", raising=False)
    monkeypatch.delenv("OWN", raising=False)
    source = "import os\ndef lambda_handler(e, c):\n    return [os.environ.get('SHARED'), os.environ.get('OWN')]\n"
    router = LambdaRouter()
    router.register("a", _function(tmp_path, source, "a"), environment={"SHARED": "s", "OWN": "a"})
    router.register("b", _function(tmp_path, source, "b"), environment={"SHARED": "s", "OWN": "b"})

    # When the common part is kept for the router's lifetime
    with router.installed():
        common = router.keep_common_environment()
        assert common["SHARED"] == "s"
        assert "OWN" not in common
        assert os.environ["SHARED"] == "s"

        # Then each invocation still sees exactly its own environment
        assert router.invoke("a", {}).result() == ["s", "a"]
        assert router.invoke("b", {}).result() == ["s", "b"]
        assert os.environ["OWN"] == "b"  # the last function's own stay, as in a warm sandbox

        # and a function registered later, without SHARED, does not see it
        router.register("c", _function(tmp_path, source, "c"), environment={"OWN": "c"})
        assert router.invoke("c", {}).result() == [None, "c"]
        assert router.invoke("a", {}).result() == ["s", "a"]

    # and uninstalling puts the process environment back
    assert "SHARED" not in os.environ


def test_a_resident_router_sets_a_functions_environment_once_while_it_stays_warm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two functions with variables of their own, on a router that keeps the common part
    monkeypatch.delenv("OWN", raising=False)
    source = "import os\ndef lambda_handler(e, c):\n    return os.environ.get('OWN')\n"
    router = LambdaRouter()
    router.register("a", _function(tmp_path, source, "a"), environment={"OWN": "a"})
    router.register("b", _function(tmp_path, source, "b"), environment={"OWN": "b"})
    with router.installed():
        router.keep_common_environment()
        assert [router.invoke(name, {}).result() for name in "ab"] == ["a", "b"]  # imported
        pushes: list[dict[str, str]] = []
        original_push = ENVIRON.push

        def counting_push(env: dict[str, str]) -> int:
            pushes.append(dict(env))
            return original_push(env)

        monkeypatch.setattr(ENVIRON, "push", counting_push)
        # When one function is invoked over and over, then the other, then the first again
        results = [router.invoke(name, {}).result() for name in ["a"] * 5 + ["b"] * 3 + ["a"]]
        # Then each sees its own variable, set once per switch instead of once per call
        assert results == ["a"] * 5 + ["b"] * 3 + ["a"]
        assert [push["OWN"] for push in pushes] == ["a", "b", "a"]
        # and while one runs, the other gets its own on top (nothing is swapped under it)
        started, release = threading.Event(), threading.Event()
        blocking = "import os\ndef lambda_handler(e, c):\n    e['started'].set(); e['release'].wait(5)\n    return os.environ.get('OWN')\n"
        router.register("slow", _function(tmp_path, blocking, "slow"), environment={"OWN": "slow"})
        monkeypatch.setattr(ENVIRON, "push", counting_push)  # register re-kept the common part
        seen: list[object] = []
        worker = threading.Thread(
            target=lambda: seen.append(
                router.invoke("slow", {"started": started, "release": release}, source="test").value
            )
        )
        worker.start()
        assert started.wait(5)
        assert router.invoke("a", {}).result() == "a"
        release.set()
        worker.join(5)
        assert seen == ["slow"]
    # and uninstalling puts the process environment back
    assert "OWN" not in os.environ


def test_an_invocation_keeps_the_handlers_reply_for_callers_in_process(tmp_path: Path) -> None:
    source = "def lambda_handler(e, c):\n    return {'statusCode': 200, 'body': 'x'}\n"
    router = LambdaRouter()
    router.register("fn", _function(tmp_path, source))
    invocation = router.invoke("fn", {})
    assert invocation.value == json.loads(invocation.payload) == {"statusCode": 200, "body": "x"}


def test_reading_the_whole_environment_never_trips_over_an_invocation_ending() -> None:
    # Given one thread's invocations setting and removing their variables, over and over
    import urllib.request

    overlay = EnvironOverlay()
    stop = threading.Event()

    def invocations() -> None:
        while not stop.is_set():
            with overlay.applied({f"MAASKIT_RACE_{i}": "x" for i in range(20)}):
                pass

    churn = threading.Thread(target=invocations)
    churn.start()
    errors: list[BaseException] = []
    try:
        # When another thread reads the whole environment meanwhile, as botocore's proxy
        # lookup does on every request
        for _ in range(3000):
            try:
                urllib.request.getproxies_environment()
                dict(os.environ.items())
                list(os.environ.values())
                os.environ.copy()
            except KeyError as err:
                errors.append(err)
    finally:
        stop.set()
        churn.join()

    # Then no read saw a key vanish under it, and nothing was left behind
    assert errors == []
    assert not [key for key in os.environ if key.startswith("MAASKIT_RACE_")]
