"""Where the Deepgram API key lives: the system keychain, or a fallback a person chose.

Order of precedence when reading: the key given for this run (``--api-key`` or
``DEEPGRAM_API_KEY``), the system keychain, the private key file, the key typed during
this run. Where no keychain exists (keyring's ``fail`` backend, a headless server)
nothing is written to disk unless the person ticks "remember in a file", and then only
to a file only they can read (0600). The key itself never reaches a log line or an
exception message from here.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
from pathlib import Path

import keyring
import keyring.errors
from keyring.backend import KeyringBackend

__all__ = ["KEY_FILE_NAME", "KeySource", "KeyStore", "keychain_usable"]

log = logging.getLogger(__name__)

SERVICE = "Captioner"
ACCOUNT = "deepgram-api-key"
KEY_FILE_NAME = "api-key"


class KeySource(enum.StrEnum):
    NONE = "none"
    ARGUMENT = "the --api-key option"
    ENVIRONMENT = "DEEPGRAM_API_KEY"
    KEYCHAIN = "the system keychain"
    FILE = "the key file"
    SESSION = "this run only"


def keychain_usable(backend: KeyringBackend) -> bool:
    """False for keyring's stand-ins that store nothing (fail, null, an empty chain)."""
    from keyring.backends import chainer, fail, null

    if isinstance(backend, fail.Keyring | null.Keyring):
        return False
    if isinstance(backend, chainer.ChainerBackend):
        return any(keychain_usable(b) for b in backend.backends)
    return True


class KeyStore:
    """Loads and saves the API key; `backend` None asks keyring for the system's."""

    def __init__(
        self,
        config_dir: Path,
        *,
        backend: KeyringBackend | None = None,
        given: str | None = None,
        given_source: KeySource = KeySource.ARGUMENT,
    ) -> None:
        self.config_dir = config_dir
        self._backend = backend
        self._given = given or None
        self._given_source = given_source if given else KeySource.NONE
        self._session_key: str | None = None
        self._loaded = False
        self._key: str | None = None
        self._source = KeySource.NONE
        self.problem = ""
        """Why the keychain could not be used, for the settings dialog ("" when fine)."""

    # -- the keychain -----------------------------------------------------------------------

    @property
    def backend(self) -> KeyringBackend:
        if self._backend is None:
            self._backend = keyring.get_keyring()
        return self._backend

    @property
    def keychain_available(self) -> bool:
        return keychain_usable(self.backend)

    @property
    def keychain_name(self) -> str:
        backend = self.backend
        name = getattr(backend, "name", None)
        return str(name) if name else type(backend).__name__

    @property
    def file_path(self) -> Path:
        return self.config_dir / KEY_FILE_NAME

    # -- reading ----------------------------------------------------------------------------

    @property
    def source(self) -> KeySource:
        self.load()
        return self._source

    def load(self) -> str | None:
        """The key to use now, or None (cached after the first call)."""
        if not self._loaded:
            self._key, self._source = self._read()
            self._loaded = True
        return self._key

    def _read(self) -> tuple[str | None, KeySource]:
        if self._given:
            return self._given, self._given_source
        if self.keychain_available:
            try:
                stored = self.backend.get_password(SERVICE, ACCOUNT)
            except keyring.errors.KeyringError as exc:
                self.problem = f"The system keychain could not be read ({type(exc).__name__})."
                log.warning("the system keychain could not be read: %s", type(exc).__name__)
            else:
                if stored:
                    return stored, KeySource.KEYCHAIN
        from_file = self._read_file()
        if from_file:
            return from_file, KeySource.FILE
        if self._session_key:
            return self._session_key, KeySource.SESSION
        return None, KeySource.NONE

    def _read_file(self) -> str | None:
        try:
            text = self.file_path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("the key file %s could not be read: %s", self.file_path, exc.strerror)
            return None
        return text or None

    # -- writing ----------------------------------------------------------------------------

    def save(self, key: str | None, *, remember_in_file: bool = False) -> KeySource:
        """Store `key` (None or "" forgets it); returns where it went.

        With a keychain the key goes there and any key file is removed. Without one the key
        is kept for this run, and written to a 0600 file only if `remember_in_file`.
        """
        key = (key or "").strip() or None
        self._given = None
        self._given_source = KeySource.NONE
        self._loaded = True
        self._key = key
        if self.keychain_available and self._save_to_keychain(key):
            self._remove_file()
            self._session_key = None
            self._source = KeySource.KEYCHAIN if key else KeySource.NONE
            return self._source
        self._session_key = key
        if key and remember_in_file:
            self._write_file(key)
            self._source = KeySource.FILE
        else:
            self._remove_file()
            self._source = KeySource.SESSION if key else KeySource.NONE
        return self._source

    def _save_to_keychain(self, key: str | None) -> bool:
        try:
            if key:
                self.backend.set_password(SERVICE, ACCOUNT, key)
            else:
                with contextlib.suppress(keyring.errors.PasswordDeleteError):
                    self.backend.delete_password(SERVICE, ACCOUNT)
        except keyring.errors.KeyringError as exc:
            self.problem = (
                f"The system keychain refused the key ({type(exc).__name__}); "
                "it is kept for this run only."
            )
            log.warning("the system keychain refused the key: %s", type(exc).__name__)
            return False
        self.problem = ""
        return True

    def _write_file(self, key: str) -> None:
        self.config_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.file_path
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            if hasattr(os, "fchmod"):  # an older file may have been created with looser rights
                os.fchmod(fd, 0o600)
            os.write(fd, (key + "\n").encode("utf-8"))
        finally:
            os.close(fd)

    def _remove_file(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.file_path.unlink()
