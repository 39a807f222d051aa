import jwt
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from scoping.models import ApiKey, Scope
from scoping.services import create_api_key, digest_api_key, touch_scope

pytestmark = pytest.mark.django_db


def test_touch_scope_creates_on_first_use_then_records_activity():
    touch_scope(scope_id="household-1")
    first = Scope.objects.get(scope_id="household-1")
    touch_scope(scope_id="household-1")
    again = Scope.objects.get(scope_id="household-1")
    assert Scope.objects.count() == 1
    assert again.first_seen_at == first.first_seen_at
    assert again.last_seen_at >= first.last_seen_at


def test_global_scope_is_recorded_like_any_other():
    touch_scope(scope_id="")
    assert Scope.objects.filter(scope_id="").exists()


def test_api_key_is_stored_only_as_a_digest():
    new_key = create_api_key(name="backend", scope_id="tenant-a", shared_write=True)
    stored = ApiKey.objects.get()
    assert new_key.raw_key.startswith("ak_")
    assert stored.key_digest == digest_api_key(new_key.raw_key)
    assert new_key.raw_key not in str(ApiKey.objects.values().get())
    assert (stored.scope_id, stored.shared_write, stored.is_active) == ("tenant-a", True, True)


def test_create_api_key_command_prints_the_key_once(capsys):
    call_command("create_api_key", "billing", "--scope", "tenant-b", "--shared-write")
    out, err = capsys.readouterr()
    raw_key = out.strip()
    assert raw_key.startswith("ak_") and "not shown again" in err
    stored = ApiKey.objects.get(key_digest=digest_api_key(raw_key))
    assert (stored.name, stored.scope_id, stored.shared_write) == ("billing", "tenant-b", True)


def test_create_api_key_command_rejects_an_invalid_scope():
    with pytest.raises(CommandError, match="printable"):
        call_command("create_api_key", "bad", "--scope", "line\nbreak")
    assert ApiKey.objects.count() == 0


def test_mint_token_command_prints_a_verifiable_jwt(capsys):
    call_command(
        "mint_token",
        "--scope",
        "household-a",
        "--context",
        "household_id=h-1",
        "--context",
        "plan=pro",
        "--sub",
        "user-7",
        "--ttl",
        "120",
    )
    token = capsys.readouterr().out.strip()
    claims = jwt.decode(token, settings.AMODAL_JWT_SECRET, algorithms=["HS256"])
    assert claims["scope_id"] == "household-a"
    assert claims["scopeContext"] == {"household_id": "h-1", "plan": "pro"}
    assert claims["sub"] == "user-7"
    assert claims["exp"] - claims["iat"] == 120


@pytest.mark.parametrize(
    "args, message",
    [
        (["--scope", "a", "--context", "novalue"], "key=value"),
        (["--scope", "a", "--ttl", "0"], "positive"),
        (["--scope", "x" * 300], "at most 255"),
    ],
)
def test_mint_token_command_rejects_bad_input(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("mint_token", *args)
