"""API keys, access tokens and refresh-token rotation, without HTTP."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jwt
import pytest
from sqlalchemy import select, update

from reasoning.service.auth import AuthError, CredentialStore, TokenPolicy, check_tenant
from reasoning.service.database import api_keys, refresh_tokens
from reasoning.service.keyring import Keyring
from reasoning.service.stores import Stores


@pytest.fixture
def store(stores: Stores) -> CredentialStore:
    return stores.credentials()


def _stored(store: CredentialStore) -> str:
    """Everything the metadata store holds about keys and tokens, as text."""
    with store._engine.connect() as db:
        return repr([db.execute(select(t)).all() for t in (api_keys, refresh_tokens)])


def _expired(store: CredentialStore, tenant: str = "alpha") -> str:
    policy, now = store.policy, int(time.time())
    return store.sign({"iss": policy.issuer, "aud": policy.audience, "sub": tenant,
                       "iat": now - 100, "exp": now - 10})


def test_a_key_is_shown_once_and_stored_as_a_hash(store: CredentialStore) -> None:
    key_id, key = store.create_key("alpha")
    assert key.startswith(f"rsk_{key_id}.")
    secret = key.split(".", 1)[1]
    assert key_id in _stored(store) and secret not in _stored(store)
    pair = store.exchange(key)
    assert store.verify(pair.access_token).tenant == "alpha"
    assert pair.refresh_token.split(".", 1)[1] not in _stored(store)


@pytest.mark.parametrize("bad", ["", "rsk_", "rsk_x.y", "nonsense", "rrt_a.b"])
def test_bad_keys_are_refused(store: CredentialStore, bad: str) -> None:
    store.create_key("alpha")
    with pytest.raises(AuthError) as caught:
        store.exchange(bad)
    assert caught.value.code == "invalid_client"


def test_a_key_with_a_wrong_secret_is_refused(store: CredentialStore) -> None:
    _, key = store.create_key("alpha")
    with pytest.raises(AuthError, match="not valid"):
        store.exchange(key[:-2] + ("A" if key[-2] != "A" else "B") + key[-1])


class Clock:
    """A clock the test moves by hand: expiry without waiting."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_access_tokens_carry_the_claims_and_expire(stores: Stores) -> None:
    clock = Clock()
    store = CredentialStore(stores.engine(), stores.keyring(), TokenPolicy(access_ttl=60), clock)
    _, key = store.create_key("alpha")
    pair = store.exchange(key)
    claims = jwt.decode(pair.access_token, options={"verify_signature": False})
    assert claims["sub"] == "alpha" and claims["exp"] - claims["iat"] == 60
    assert jwt.get_unverified_header(pair.access_token)["alg"] == "HS256"
    clock.now += 59
    assert store.verify(pair.access_token).tenant == "alpha"
    clock.now += 2
    with pytest.raises(AuthError) as caught:
        store.verify(pair.access_token)
    assert caught.value.code == "expired"


def test_refresh_tokens_expire_by_the_clock(stores: Stores) -> None:
    clock = Clock()
    store = CredentialStore(stores.engine(), stores.keyring(), TokenPolicy(refresh_ttl=600),
                            clock)
    _, key = store.create_key("alpha")
    pair = store.exchange(key)
    clock.now += 601
    with pytest.raises(AuthError, match="the refresh token has expired"):
        store.refresh(_expired(store), pair.refresh_token)


@pytest.mark.parametrize("claim", ["exp", "iat", "iss", "aud", "sub"])
def test_a_token_missing_a_required_claim_is_refused(store: CredentialStore, claim: str) -> None:
    policy, now = store.policy, int(time.time())
    claims = {"iss": policy.issuer, "aud": policy.audience, "sub": "alpha", "iat": now,
              "exp": now + 600}
    assert store.verify(store.sign(claims)).tenant == "alpha"
    del claims[claim]
    with pytest.raises(AuthError, match=f'missing the "{claim}" claim') as caught:
        store.verify(store.sign(claims))
    assert caught.value.code == "invalid_token"


@pytest.mark.parametrize(("claim", "value"), [("exp", "tomorrow"), ("iat", None),
                                              ("iat", 10**12)])
def test_token_times_must_be_numbers_in_the_past(store: CredentialStore, claim: str,
                                                value: object) -> None:
    policy, now = store.policy, int(time.time())
    claims = {"iss": policy.issuer, "aud": policy.audience, "sub": "alpha", "iat": now,
              "exp": now + 600, claim: value}
    with pytest.raises(AuthError, match="not valid"):
        store.verify(store.sign(claims))


def test_tokens_of_another_service_are_refused(tmp_path: Path, store: CredentialStore) -> None:
    elsewhere = CredentialStore(store._engine, Keyring.at(tmp_path / "other.key"))
    _, key = elsewhere.create_key("alpha")
    with pytest.raises(AuthError, match="not valid"):
        store.verify(elsewhere.exchange(key).access_token)


def test_refresh_rotates_and_reuse_revokes_the_family(stores: Stores) -> None:
    clock = Clock()
    store = CredentialStore(stores.engine(), stores.keyring(), TokenPolicy(), clock)
    _, key = store.create_key("alpha")
    first = store.exchange(key)
    principal, second = store.refresh(_expired(store), first.refresh_token)
    assert principal.tenant == "alpha" and second.refresh_token != first.refresh_token
    _, third = store.refresh(_expired(store), second.refresh_token)
    clock.now += TokenPolicy().reuse_grace + 1  # past the grace of concurrent requests
    with pytest.raises(AuthError, match="already used"):
        store.refresh(_expired(store), first.refresh_token)
    with pytest.raises(AuthError, match="revoked"):
        store.refresh(_expired(store), third.refresh_token)
    # Another exchange starts a new family, untouched by the revocation.
    store.refresh(_expired(store), store.exchange(key).refresh_token)


def test_refresh_needs_the_same_tenant_and_a_live_token(store: CredentialStore) -> None:
    _, key = store.create_key("alpha")
    pair = store.exchange(key)
    with pytest.raises(AuthError, match="another principal"):
        store.refresh(_expired(store, "beta"), pair.refresh_token)
    with pytest.raises(AuthError, match="not valid"):
        store.refresh(_expired(store), pair.refresh_token + "x")
    with store._engine.begin() as db:
        db.execute(update(refresh_tokens).values(expires_at=0))
    with pytest.raises(AuthError, match="expired"):
        store.refresh(_expired(store), pair.refresh_token)


def test_revoking_a_key_ends_its_exchanges_and_refreshes(store: CredentialStore) -> None:
    key_id, key = store.create_key("alpha")
    pair = store.exchange(key)
    assert store.revoke_key(key_id) and not store.revoke_key(key_id)
    with pytest.raises(AuthError, match="revoked"):
        store.exchange(key)
    with pytest.raises(AuthError, match="revoked"):
        store.refresh(_expired(store), pair.refresh_token)
    assert [k["key_id"] for k in store.list_keys()] == [key_id]


@pytest.mark.parametrize("name", ["", "Alpha", "a b", "../x", "-x", "a" * 64])
def test_tenant_names_are_checked(name: str) -> None:
    with pytest.raises(ValueError, match="not a valid name"):
        check_tenant(name)


def test_a_token_presented_again_within_the_grace_buys_a_pair_of_the_same_family(
    stores: Stores,
) -> None:
    """Two requests of one client refreshing one expired token at once: both are served,
    and the family lives on; after the grace a reuse is an attack again."""
    clock = Clock()
    store = CredentialStore(stores.engine(), stores.keyring(), TokenPolicy(reuse_grace=10),
                            clock)
    _, key = store.create_key("alpha")
    first = store.exchange(key)
    _, second = store.refresh(_expired(store), first.refresh_token)
    clock.now += 9
    _, again = store.refresh(_expired(store), first.refresh_token)
    assert again.refresh_token != second.refresh_token
    _, later = store.refresh(_expired(store), second.refresh_token)  # neither was revoked
    store.refresh(_expired(store), again.refresh_token)
    clock.now += 2  # 11 s after the first use
    with pytest.raises(AuthError, match="already used"):
        store.refresh(_expired(store), first.refresh_token)
    with pytest.raises(AuthError, match="revoked"):
        store.refresh(_expired(store), later.refresh_token)


def test_racing_refreshes_within_the_grace_all_win(store: CredentialStore) -> None:
    _, key = store.create_key("alpha")
    pair, expired = store.exchange(key), _expired(store)
    with ThreadPoolExecutor(4) as pool:
        pairs = list(pool.map(lambda _: store.refresh(expired, pair.refresh_token)[1],
                              range(4)))
    assert len({p.refresh_token for p in pairs}) == 4
    for fresh in pairs:  # the family was not revoked: each new token works once
        store.refresh(_expired(store), fresh.refresh_token)


def test_of_two_racing_refreshes_with_one_token_exactly_one_wins(stores: Stores) -> None:
    """Without a grace: replicas share the database, and the token is marked used by one
    conditional UPDATE."""
    store = CredentialStore(stores.engine(), stores.keyring(), TokenPolicy(reuse_grace=0))
    _, key = store.create_key("alpha")
    pair, expired = store.exchange(key), _expired(store)

    def attempt(_: int) -> str:
        try:
            store.refresh(expired, pair.refresh_token)
            return "won"
        except AuthError as err:
            return str(err)

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    assert outcomes.count("won") == 1, outcomes
    # The first loser finds it used and revokes the family; later ones find it revoked.
    assert all("already used" in o or "revoked" in o for o in outcomes if o != "won")
    assert any("already used" in o for o in outcomes), outcomes
