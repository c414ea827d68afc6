"""Which endpoint the window's next Start streams to, and with which key.

The rule is `captioner.endpoints`': a URL given for this run wins; otherwise the endpoint
chosen in the settings, or Deepgram when a key is known, or the offline engine, which is
started (once, then kept) only when a Start needs it.
"""

from __future__ import annotations

from collections.abc import Callable

from captioner import endpoints
from captioner.app.engine import OfflineEngine
from captioner.core import untrusted
from captioner.endpoints import Target
from captioner.ui.keystore import KeyStore
from captioner.ui.preferences import Endpoint, PreferencesStore

__all__ = ["EndpointChooser"]


class EndpointChooser:
    def __init__(
        self,
        run_url: str | None,
        store: PreferencesStore,
        keys: KeyStore,
        engine: OfflineEngine,
    ) -> None:
        self.run_url = run_url
        """The endpoint for this run (`--url`), which wins over the settings."""
        self._store = store
        self._keys = keys
        self.engine = engine

    def key(self) -> str | None:
        key = self._keys.load()
        untrusted.remember_secret(key)
        return key

    def target(self) -> Target:
        """Where the next Start goes; `offline` until the engine runs."""
        key = self.key()
        if self.run_url:
            return Target(endpoints.engine_name(self.run_url), self.run_url, key)
        prefs = self._store.current
        choice = prefs.effective_endpoint(have_key=bool(key))
        if choice is Endpoint.OFFLINE:
            return endpoints.offline()
        return Target(choice.label, prefs.endpoint_url(choice), key)

    def title(self) -> tuple[str, str]:
        """(engine name, detail) for the status bar, without starting anything."""
        target = self.target()
        return target.engine, target.detail

    async def resolve(self, on_engine_loading: Callable[[], None]) -> Target:
        """The target with a URL: the offline engine is started for it if needed (slow the
        first time: the model loads). Raises what starting the engine raised."""
        target = self.target()
        if not target.offline:
            return target
        if not self.engine.running:
            on_engine_loading()
        server = await self.engine.ensure_started()
        untrusted.remember_secret(server.token)
        return target.running_at(server.url, server.token)
