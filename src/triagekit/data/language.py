"""Which languages a data set holds: its ``language`` column where there is one, a language detector otherwise.

The detector is py3langid (BSD-3, pure Python + numpy, 97 languages): it needs no model download and classifies a
ticket in well under a millisecond, so every row of a training file can be checked.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from functools import lru_cache
from typing import Iterable, Mapping, Sequence

from triagekit.data.text import build_text

__all__ = ["UNKNOWN", "detect_language", "row_languages", "language_mix", "unseen_languages", "mix_warnings"]

UNKNOWN = "unknown"
"""The language of a row that has no usable ``language`` value and whose text the detector cannot name."""

# Below this normalised probability the detector's guess is noise (a 27-character English sentence scores 0.48, a
# German one 0.88, a string of digits or keyboard mash 0.03-0.10).
MIN_CONFIDENCE = 0.25
_NO_LANGUAGE = {"zxx", "und"}  # py3langid's "no linguistic content" and "undetermined"


@lru_cache(maxsize=1)
def _identifier():
    try:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier
    except ImportError as exc:
        raise ImportError(
            "detecting languages needs py3langid: pip install 'triagekit[multilingual]' "
            "(or give the file a `language` column)"
        ) from exc
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect_language(text: str) -> str:
    """ISO 639-1 code of ``text`` (``en``, ``de``...), or ``UNKNOWN`` when the detector cannot name it."""
    if not text or not text.strip():
        return UNKNOWN
    lang, confidence = _identifier().classify(text)
    return UNKNOWN if lang in _NO_LANGUAGE or confidence < MIN_CONFIDENCE else lang


def _column_value(row: Mapping, field: str) -> str | None:
    value = row.get(field)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    value = str(value).strip().lower()
    return value or None


def row_languages(
    rows: Sequence[Mapping], text_fields: Sequence[str] = ("subject", "body"), field: str = "language"
) -> list[str]:
    """The language of every row: its ``field`` value when set, the detector's answer on its text otherwise.

    Rows the detector cannot name come back as ``UNKNOWN`` and are counted in one warning (never dropped).
    """
    out = [_column_value(r, field) or detect_language(build_text(r, text_fields)) for r in rows]
    unknown = out.count(UNKNOWN)
    if unknown:
        warnings.warn(
            f"{unknown} of {len(rows)} rows: no `{field}` value and the language detector cannot name the "
            "language of their text (too short, digits or code only); they count as 'unknown'. Add a "
            f"`{field}` column to say what they are.",
            stacklevel=2,
        )
    return out


def language_mix(languages: Iterable[str]) -> dict[str, int]:
    """Rows per language, most frequent first."""
    return dict(Counter(languages).most_common())


def unseen_languages(train_mix: Mapping[str, int], test_mix: Mapping[str, int]) -> list[str]:
    """Test languages with no training row (``unknown`` is not a language and is left out)."""
    return [lang for lang in test_mix if lang not in train_mix and lang != UNKNOWN]


def mix_warnings(train_mix: Mapping[str, int], test_mix: Mapping[str, int]) -> list[str]:
    """Plain-language warnings about the training vs test language mix (empty when there is nothing to say)."""
    out = []
    unseen = unseen_languages(train_mix, test_mix)
    if unseen:
        n = sum(test_mix[lang] for lang in unseen)
        out.append(
            f"{n} test rows are in {', '.join(unseen)}, a language never seen in training: their scores "
            "measure cross-lingual transfer; a multilingual backbone (backbone: auto or gemma3) transfers "
            "best, adding a few hundred labelled rows in that language helps more"
        )
    if test_mix.get(UNKNOWN):
        out.append(f"{test_mix[UNKNOWN]} test rows are in a language the detector cannot name")
    return out
