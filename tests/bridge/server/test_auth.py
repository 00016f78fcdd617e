"""Token auth: constant-time compare, any text a stranger sends is an answer, never a crash."""

from __future__ import annotations

import pytest

from bridge.server.auth import TokenAuth


def test_without_a_token_everything_is_accepted_and_args_stay() -> None:
    auth = TokenAuth(None)
    assert not auth.required and auth.accepts(None)
    assert auth.strip_from_args(["job", "x"]) == (["job", "x"], False)


def test_the_token_is_stripped_from_the_arguments_only_when_it_matches() -> None:
    auth = TokenAuth("s3cret")
    assert auth.required
    assert auth.strip_from_args(["job", "s3cret"]) == (["job"], True)
    assert auth.strip_from_args(["job", "s3cre"]) == (["job", "s3cre"], False)
    assert auth.strip_from_args([3]) == ([3], False)
    assert not auth.accepts(None) and not auth.accepts(7) and auth.accepts("s3cret")


def test_non_ascii_guesses_are_refused_not_raised() -> None:
    # hmac.compare_digest raises TypeError on non-ASCII str; that used to escape on the OSC thread.
    auth = TokenAuth("s3cret")
    assert not auth.accepts("sécret")
    assert auth.strip_from_args(["ping", "ключ"]) == (["ping", "ключ"], False)
    assert TokenAuth("clé").accepts("clé")


def test_an_empty_token_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        TokenAuth("")
