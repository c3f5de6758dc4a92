"""The word + character TF-IDF features shared by the TF-IDF router, its hybrid half and the label audit."""

from __future__ import annotations

__all__ = ["tfidf_features"]


def tfidf_features():
    """Word 1-2 and char_wb 2-5 n-grams, sublinear tf, as one ``FeatureUnion``.

    Word n-grams carry the topic; char_wb n-grams survive typos, inflection and unseen compounds (German tickets).
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    return FeatureUnion(
        [
            ("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, min_df=1)),
            ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=1)),
        ]
    )
