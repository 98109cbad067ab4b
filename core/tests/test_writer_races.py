"""What a commit that lost a conditional save to another request does next."""

from __future__ import annotations

import pytest

from flask_serverside import Capability
from flask_serverside import MemoryStore
from flask_serverside import get_state
from flask_serverside import register_store
from flask_serverside import signals
from flask_serverside import unregister_store
from flask_serverside.testing.spy import spy_on_store


class LoadingMemoryStore(MemoryStore):
    """The memory store without ``save_if_or_load``: a lost save is followed by a load."""

    capabilities = MemoryStore.capabilities & ~Capability.SAVE_IF_OR_LOAD


@pytest.fixture(params=["returning", "loading"])
def store_type(request):
    """Each race on a store whose lost saves return the record they lost to (the memory
    store), and on one that does not."""
    if request.param == "returning":
        yield "memory"
        return
    register_store("memory-loading", LoadingMemoryStore)
    yield "memory-loading"
    unregister_store("memory-loading")


def _login(app):
    @app.post("/login")
    def login():
        from flask import session

        session.update(user="alice", n=1)
        return "in"

    client = app.test_client()
    client.post("/login")
    return f"session={client.get_cookie('session').value}"


def _race(app, cookie, first, second):
    """Two requests of one session load it, then ``first`` and ``second`` change it and save
    in that order."""
    interface = app.session_interface
    with app.test_request_context("/", headers={"Cookie": cookie}) as one:
        with app.test_request_context("/", headers={"Cookie": cookie}) as two:
            one.session.get("n")
            two.session.get("n")
            first(one.session)
            second(two.session)
            for ctx in (one, two):
                interface.save_session(app, ctx.session, app.response_class())


def test_a_lost_save_whose_changes_are_already_stored_is_not_made_again(make_app, store_type):
    app = make_app(SESSION_TYPE=store_type)
    cookie = _login(app)
    spy = spy_on_store(app)
    retried = []
    signals.write_conflicted.connect(lambda sender, **kw: retried.append(kw), app, weak=False)

    def bump(session):
        session["n"] = session["n"] + 1

    _race(app, cookie, bump, bump)
    # The second request lost its conditional save, read the record (returned by the lost
    # save, or loaded after it) and found n = 2, its own change, there: no second save.
    if store_type == "memory":
        assert spy.calls["save_if_or_load"] == 2
        assert spy.calls["save_if"] == spy.calls["load"] == 0
    else:
        assert spy.calls["save_if"] == 2
        assert spy.calls["load"] == 1
    assert retried == []
    state = get_state(app)
    key = state.store_key(cookie.split("=", 1)[1])
    assert state.decode(key, state.store.load(key)) == {"_permanent": True, "user": "alice", "n": 2}


def test_a_lost_save_with_other_changes_is_merged_and_saved_again(make_app, store_type):
    app = make_app(SESSION_TYPE=store_type)
    cookie = _login(app)
    spy = spy_on_store(app)

    def theme(session):
        session["theme"] = "dark"

    def lang(session):
        session["lang"] = "fr"

    _race(app, cookie, theme, lang)
    if store_type == "memory":
        assert spy.calls["save_if_or_load"] == 3
        assert spy.calls["save_if"] == spy.calls["load"] == 0
    else:
        assert spy.calls["save_if"] == 3
        assert spy.calls["load"] == 1
    state = get_state(app)
    key = state.store_key(cookie.split("=", 1)[1])
    data = state.decode(key, state.store.load(key))
    assert data["theme"] == "dark" and data["lang"] == "fr" and data["n"] == 1


def test_save_if_or_load_without_conditional_save_is_refused_at_registration():
    from flask_serverside import StorePluginError

    class Returning(MemoryStore):
        capabilities = MemoryStore.capabilities & ~Capability.CONDITIONAL_SAVE

    with pytest.raises(StorePluginError, match="SAVE_IF_OR_LOAD without .*CONDITIONAL_SAVE"):
        register_store("returning-only", Returning)


class RivalAfterEveryLoss(MemoryStore):
    """A memory store on which a rival request saves the session again right after each save
    of ours loses (and once before our first), up to :attr:`rivals` times: the record a lost
    save returns is outdated at once, as under heavy contention."""

    rivals = 8

    @classmethod
    def from_settings(cls, settings):
        return cls(key_prefix=settings.key_prefix)

    def _rival(self, sid):
        if type(self).rivals > 0 and self.load(sid) is not None:
            type(self).rivals -= 1
            self.save(sid, self.load(sid).data, 60)  # same data, a new version

    def save_if_or_load(self, sid, data, ttl, *, expected, user_id=None):
        if expected is not None and type(self).rivals == 8:
            self._rival(sid)
        saved, current = super().save_if_or_load(sid, data, ttl, expected=expected, user_id=user_id)
        if not saved:
            self._rival(sid)
        return saved, current


def test_a_retry_after_a_pause_merges_onto_a_fresh_load(make_app):
    """The immediate retries use the record the lost save returned; a retry after a pause
    loads it again, since the one returned before the pause is likely outdated."""
    register_store("rival", RivalAfterEveryLoss)
    try:
        RivalAfterEveryLoss.rivals = 8
        app = make_app(SESSION_TYPE="rival")
        cookie = _login(app)
        spy = spy_on_store(app)
        attempts = []
        signals.write_conflicted.connect(
            lambda sender, **kw: attempts.append(kw["attempts"]), app, weak=False
        )
        with app.test_request_context("/", headers={"Cookie": cookie}) as ctx:
            ctx.session["theme"] = "dark"
            app.session_interface.save_session(app, ctx.session, app.response_class())
        # Lost: the first save, the two immediate retries (each on the record the loss
        # returned, outdated by the rival at once), then a pause and a fresh load: the fourth
        # save lands. Trusting the returned records after the pause would lose until the
        # rival stops (nine saves).
        assert attempts == [4]
        assert spy.calls["load"] == 1
        state = get_state(app)
        key = state.store_key(cookie.split("=", 1)[1])
        assert state.decode(key, state.store.load(key))["theme"] == "dark"
    finally:
        unregister_store("rival")
