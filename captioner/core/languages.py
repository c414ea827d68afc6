"""Languages and models by name: what the settings offer for each engine.

A language is shown in English and in its own name ("German — Deutsch") and stored as the
code the server takes (`de`, `en-GB`, `multi`). What is offered depends on where the audio
goes:

* the offline engine: every language Whisper knows, plus "Detect automatically" (`multi`);
  the server's own list (`captioner.server.query.WHISPER_LANGUAGES`) is the same set, and a
  test keeps them equal;
* Deepgram: the languages Deepgram publishes for the chosen model (Nova-3's list grew
  through 2025-26, see docs/languages.md), with `multi` where the model transcribes several
  languages at once; a model not listed here accepts any code;
* a custom server: any code, since nothing is known about it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEEPGRAM_MODELS",
    "DETECT",
    "OFFLINE_MODEL_LABEL",
    "WHISPER_CODES",
    "LanguageChoice",
    "ModelChoice",
    "deepgram_languages",
    "describe",
    "offline_languages",
    "right_to_left",
]

DETECT = "multi"
OFFLINE_MODEL_LABEL = "Whisper base (on this computer)"

# code: (English name, the language's own name)
_NAMES: dict[str, tuple[str, str]] = {
    "af": ("Afrikaans", "Afrikaans"),
    "am": ("Amharic", "አማርኛ"),
    "ar": ("Arabic", "العربية"),
    "as": ("Assamese", "অসমীয়া"),
    "az": ("Azerbaijani", "Azərbaycanca"),
    "ba": ("Bashkir", "Башҡортса"),
    "be": ("Belarusian", "Беларуская"),
    "bg": ("Bulgarian", "Български"),
    "bn": ("Bengali", "বাংলা"),
    "bo": ("Tibetan", "བོད་སྐད"),
    "br": ("Breton", "Brezhoneg"),
    "bs": ("Bosnian", "Bosanski"),
    "ca": ("Catalan", "Català"),
    "cs": ("Czech", "Čeština"),
    "cy": ("Welsh", "Cymraeg"),
    "da": ("Danish", "Dansk"),
    "de": ("German", "Deutsch"),
    "el": ("Greek", "Ελληνικά"),
    "en": ("English", "English"),
    "es": ("Spanish", "Español"),
    "et": ("Estonian", "Eesti"),
    "eu": ("Basque", "Euskara"),
    "fa": ("Persian", "فارسی"),
    "fi": ("Finnish", "Suomi"),
    "fo": ("Faroese", "Føroyskt"),
    "fr": ("French", "Français"),
    "gl": ("Galician", "Galego"),
    "gu": ("Gujarati", "ગુજરાતી"),
    "ha": ("Hausa", "Hausa"),
    "haw": ("Hawaiian", "ʻŌlelo Hawaiʻi"),
    "he": ("Hebrew", "עברית"),
    "hi": ("Hindi", "हिन्दी"),
    "hr": ("Croatian", "Hrvatski"),
    "ht": ("Haitian Creole", "Kreyòl ayisyen"),
    "hu": ("Hungarian", "Magyar"),
    "hy": ("Armenian", "Հայերեն"),
    "id": ("Indonesian", "Bahasa Indonesia"),
    "is": ("Icelandic", "Íslenska"),
    "it": ("Italian", "Italiano"),
    "ja": ("Japanese", "日本語"),
    "jw": ("Javanese", "Basa Jawa"),
    "ka": ("Georgian", "ქართული"),
    "kk": ("Kazakh", "Қазақ тілі"),
    "km": ("Khmer", "ភាសាខ្មែរ"),
    "kn": ("Kannada", "ಕನ್ನಡ"),
    "ko": ("Korean", "한국어"),
    "la": ("Latin", "Latina"),
    "lb": ("Luxembourgish", "Lëtzebuergesch"),
    "ln": ("Lingala", "Lingála"),
    "lo": ("Lao", "ລາວ"),
    "lt": ("Lithuanian", "Lietuvių"),
    "lv": ("Latvian", "Latviešu"),
    "mg": ("Malagasy", "Malagasy"),
    "mi": ("Māori", "Te reo Māori"),
    "mk": ("Macedonian", "Македонски"),
    "ml": ("Malayalam", "മലയാളം"),
    "mn": ("Mongolian", "Монгол"),
    "mr": ("Marathi", "मराठी"),
    "ms": ("Malay", "Bahasa Melayu"),
    "mt": ("Maltese", "Malti"),
    "my": ("Burmese", "မြန်မာ"),
    "ne": ("Nepali", "नेपाली"),
    "nl": ("Dutch", "Nederlands"),
    "nn": ("Norwegian Nynorsk", "Nynorsk"),
    "no": ("Norwegian", "Norsk"),
    "oc": ("Occitan", "Occitan"),
    "pa": ("Punjabi", "ਪੰਜਾਬੀ"),
    "pl": ("Polish", "Polski"),
    "ps": ("Pashto", "پښتو"),
    "pt": ("Portuguese", "Português"),
    "ro": ("Romanian", "Română"),
    "ru": ("Russian", "Русский"),
    "sa": ("Sanskrit", "संस्कृतम्"),
    "sd": ("Sindhi", "سنڌي"),
    "si": ("Sinhala", "සිංහල"),
    "sk": ("Slovak", "Slovenčina"),
    "sl": ("Slovenian", "Slovenščina"),
    "sn": ("Shona", "ChiShona"),
    "so": ("Somali", "Soomaali"),
    "sq": ("Albanian", "Shqip"),
    "sr": ("Serbian", "Српски"),
    "su": ("Sundanese", "Basa Sunda"),
    "sv": ("Swedish", "Svenska"),
    "sw": ("Swahili", "Kiswahili"),
    "ta": ("Tamil", "தமிழ்"),
    "te": ("Telugu", "తెలుగు"),
    "tg": ("Tajik", "Тоҷикӣ"),
    "th": ("Thai", "ไทย"),
    "tk": ("Turkmen", "Türkmençe"),
    "tl": ("Tagalog", "Tagalog"),
    "tr": ("Turkish", "Türkçe"),
    "tt": ("Tatar", "Татарча"),
    "uk": ("Ukrainian", "Українська"),
    "ur": ("Urdu", "اردو"),
    "uz": ("Uzbek", "Oʻzbekcha"),
    "vi": ("Vietnamese", "Tiếng Việt"),
    "yi": ("Yiddish", "ייִדיש"),
    "yo": ("Yoruba", "Yorùbá"),
    "yue": ("Cantonese", "粵語"),
    "zh": ("Chinese", "中文"),
}

WHISPER_CODES = frozenset(_NAMES)

RIGHT_TO_LEFT = frozenset({"ar", "fa", "he", "ps", "sd", "ur", "yi"})
"""Languages written right to left (Arabic and Hebrew scripts)."""


def right_to_left(code: str | None) -> bool:
    """Whether `code` (en, he-IL, ar …) names a language written right to left."""
    return bool(code) and str(code).split("-", 1)[0].lower() in RIGHT_TO_LEFT


"""Every language Whisper (multilingual) knows: the offline engine's choices."""

# region and script subtags seen in Deepgram's codes
_REGIONS = {
    "419": "Latin America",
    "AU": "Australia",
    "BE": "Belgium",
    "BR": "Brazil",
    "CA": "Canada",
    "CH": "Switzerland",
    "CN": "China",
    "DK": "Denmark",
    "GB": "United Kingdom",
    "HK": "Hong Kong",
    "IN": "India",
    "KR": "Korea",
    "NZ": "New Zealand",
    "PT": "Portugal",
    "SE": "Sweden",
    "TH": "Thailand",
    "TW": "Taiwan",
    "US": "United States",
    "Hans": "Simplified",
    "Hant": "Traditional",
}
_SPECIAL = {
    "nl-BE": ("Flemish", "Vlaams"),
    "zh-HK": ("Cantonese (Hong Kong)", "粵語（香港）"),
    "zh-TW": ("Chinese (Taiwan, Traditional)", "中文（台灣）"),
    "zh-Hant": ("Chinese (Traditional)", "中文（繁體）"),
    "zh-Hans": ("Chinese (Simplified)", "中文（简体）"),
    "zh-CN": ("Chinese (China, Simplified)", "中文（中国）"),
}


@dataclass(frozen=True)
class LanguageChoice:
    """One entry of a language list: the code sent, and how it is shown."""

    code: str
    label: str


@dataclass(frozen=True)
class ModelChoice:
    """One of Deepgram's live models: its name, a line about it, and its languages."""

    name: str
    description: str
    languages: tuple[str, ...]
    multilingual: bool = False


def describe(code: str) -> str:
    """ "German — Deutsch", "English (United Kingdom)", "Detect automatically"; an unknown
    code is shown as it is."""
    if code == DETECT:
        return "Several languages (multi)"
    if code in _SPECIAL:
        english, native = _SPECIAL[code]
        return f"{english} — {native}"
    primary, _, rest = code.partition("-")
    names = _NAMES.get(primary.lower())
    if names is None:
        return code
    english, native = names
    if rest:
        region = _REGIONS.get(rest, rest)
        return f"{english} ({region}) — {native}"
    return english if english == native else f"{english} — {native}"


def offline_languages() -> list[LanguageChoice]:
    """ "Detect automatically" first, then Whisper's languages by English name."""
    choices = [LanguageChoice(code, describe(code)) for code in WHISPER_CODES]
    choices.sort(key=lambda choice: choice.label.casefold())
    return [LanguageChoice(DETECT, "Detect automatically"), *choices]


def deepgram_languages(model: str) -> list[LanguageChoice] | None:
    """The languages Deepgram lists for `model` (multilingual first), or None for a model not
    known here (any code may then be typed)."""
    for choice in DEEPGRAM_MODELS:
        if choice.name == model.strip():
            listed = [LanguageChoice(code, describe(code)) for code in choice.languages]
            listed.sort(key=lambda item: item.label.casefold())
            if choice.multilingual:
                listed.insert(0, LanguageChoice(DETECT, "Several languages at once (multi)"))
            return listed
    return None


_ENGLISH = ("en", "en-US", "en-AU", "en-GB", "en-IN", "en-NZ")
_NOVA3 = (
    *_ENGLISH,
    # 2025-08 to 2026-08, in the order Deepgram announced them
    *("de", "nl", "sv", "sv-SE", "da", "da-DK"),
    *("es", "es-419", "fr", "fr-CA", "pt", "pt-BR", "pt-PT"),
    *("it", "tr", "no", "id"),
    *("bg", "cs", "fi", "hi", "hu", "ja", "ko", "ko-KR", "pl", "ru", "uk", "vi"),
    *("ca", "et", "nl-BE", "de-CH", "el", "lv", "lt", "ms", "ro", "sk"),
    *("be", "bn", "bs", "hr", "kn", "mk", "mr", "sr", "sl", "ta", "tl", "te"),
    *("he", "fa", "ur"),
    *("zh-HK", "th", "th-TH"),
    *("zh", "zh-CN", "zh-Hans", "zh-TW", "zh-Hant"),
    *("af", "hy", "ka", "ne", "pa", "pa-IN"),
)
_NOVA2 = (
    *_ENGLISH,
    *("bg", "ca", "zh", "zh-CN", "zh-Hans", "zh-TW", "zh-Hant", "zh-HK", "cs", "da", "da-DK"),
    *("nl", "nl-BE", "et", "fi", "fr", "fr-CA", "de", "de-CH", "el", "hi", "hu", "id", "it"),
    *("ja", "ko", "ko-KR", "lv", "lt", "ms", "no", "pl", "pt", "pt-BR", "pt-PT", "ro", "ru"),
    *("sk", "es", "es-419", "sv", "sv-SE", "th", "th-TH", "tr", "uk", "vi"),
)

DEEPGRAM_MODELS: tuple[ModelChoice, ...] = (
    ModelChoice(
        "nova-3",
        "Deepgram's most accurate model: meetings, captions, noisy rooms",
        _NOVA3,
        multilingual=True,
    ),
    ModelChoice("nova-3-medical", "Nova-3 tuned for clinical vocabulary (English)", _ENGLISH),
    ModelChoice(
        "nova-2",
        "The previous generation: some languages Nova-3 lacks, filler words",
        _NOVA2,
        multilingual=True,
    ),
    ModelChoice("nova-2-meeting", "Nova-2 for conference rooms with several speakers", ("en",)),
    ModelChoice("nova-2-phonecall", "Nova-2 for low-bandwidth phone calls", ("en",)),
    ModelChoice("nova-2-video", "Nova-2 for the audio of videos", ("en",)),
    ModelChoice("enhanced", "Older model, kept for existing set-ups", ("en",)),
    ModelChoice("base", "Oldest and cheapest model", ("en",)),
)
