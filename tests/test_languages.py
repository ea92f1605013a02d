"""Keyword tokenisers, language detection and query analysis: the behaviour retrieval depends on."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shuken.knowledge.languages import (
    analyze_query,
    index_terms,
    supported_languages,
    tokenizer_classes,
    tokenizer_for,
)
from shuken.knowledge.languages.detect import detect_language

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
LANGUAGES = ("ja", "zh", "ar", "hi", "en", "fr", "und")


def terms(language: str, text: str) -> list[str]:
    return tokenizer_for(language).terms(text)


def same_terms(language: str, *texts: str) -> None:
    results = [terms(language, text) for text in texts]
    assert all(result == results[0] for result in results), dict(zip(texts, results))
    assert results[0]


# --- registry --------------------------------------------------------------------------------------------


def test_every_language_has_its_registered_tokeniser():
    assert set(tokenizer_classes()) == set(LANGUAGES)
    assert supported_languages() == sorted(set(LANGUAGES) - {"und"})
    for language in LANGUAGES:
        assert language in type(tokenizer_for(language)).languages
    assert type(tokenizer_for("ko")) is type(tokenizer_for("und"))


def test_index_terms_uses_the_given_language():
    assert index_terms("The servers were running", "en") == ["server", "run"]
    assert index_terms("The servers were running", "und") == ["the", "servers", "were", "running"]


# --- Japanese --------------------------------------------------------------------------------------------


def test_japanese_unifies_inflection_and_spelling_variants():
    same_terms("ja", "食べた", "食べる", "たべる", "食べない", "食べました")
    same_terms("ja", "子供", "子ども", "こども")
    same_terms("ja", "サーバ", "サーバー")
    same_terms("ja", "國", "国")


def test_japanese_drops_particles_auxiliaries_and_punctuation_keeps_numbers():
    result = terms("ja", "東京は日本の首都です。人口は１４００万人。")
    assert result == ["東京", "日本", "首都", "人口", "1400", "万", "人"]
    for dropped in ("は", "の", "です", "。"):
        assert dropped not in result


def test_japanese_proper_nouns_keep_their_spelling():
    # UniDic's lemma for 東京 is its reading トウキョウ; the kanji spelling also matches Chinese text
    assert terms("ja", "東京に行く") == ["東京", "行く"]
    assert terms("ja", "伊藤") != terms("ja", "伊東")  # both lemmas are イトウ
    assert "東京" in terms("zh", "东京和東京")


def test_japanese_full_width_and_latin_words():
    assert terms("ja", "ＡＢＣのServersとＴｏｋｙｏ") == ["abc", "server", "tokyo"]


def test_japanese_long_text_is_tagged_in_pieces():
    sentence = "吾輩は猫である。名前はまだ無い。"
    assert terms("ja", sentence * 3000) == terms("ja", sentence) * 3000  # 48,000 characters


# --- Chinese ---------------------------------------------------------------------------------------------


def test_chinese_is_segmented_into_words():
    result = terms("zh", "我爱北京天安门，黑豹队的防守只丢了308分。")
    assert {"北京", "天安门", "防守", "308"} <= set(result)
    assert "的" not in result and "，" not in result and "我" not in result


def test_chinese_latin_words_are_stemmed():
    assert terms("zh", "国家橄榄球联盟（NFL）的Servers") == ["国家", "橄榄球", "联盟", "nfl", "server"]


# --- Arabic ----------------------------------------------------------------------------------------------


def test_arabic_clitics_and_article_are_stripped():
    same_terms("ar", "كتاب", "الكتاب", "والكتاب", "بالكتاب", "للكتاب", "فالكتاب", "وكتاب")
    # a broken plural is another word to a light stemmer, but its article goes too
    assert terms("ar", "الكتب") == terms("ar", "كتب")


def test_arabic_normalisation():
    same_terms("ar", "الْكِتَابُ", "الكتاب", "الكـــتاب")  # tashkeel, tatweel
    same_terms("ar", "المدرسة", "مدرسة", "مدرسه", "والمدرسة")  # ta marbuta; Snowball's prefix quirk avoided
    same_terms("ar", "أحمد", "احمد", "إحمد")
    assert terms("ar", "عام ٢٠٢٣") == ["2023"]  # عام is a stop word, Arabic-Indic digits → ASCII
    assert terms("ar", "في من على إلى") == []


def test_arabic_short_words_keep_their_letters():
    # stripping is only done when three letters remain: الله is not "له"
    assert terms("ar", "الله") != terms("ar", "له")


# --- Hindi -----------------------------------------------------------------------------------------------


def test_hindi_nukta_and_chandrabindu_normalisation():
    composed, decomposed, plain = "\u095brूरी".replace("r", "\u0930"), "\u091c\u093c\u0930\u0942\u0930\u0940", "जरूरी"
    same_terms("hi", composed, decomposed, plain)
    same_terms("hi", "डिफ़ेंस", "डिफेंस")
    same_terms("hi", "चाँद", "चांद")


def test_hindi_digits_danda_stop_words_and_stemming():
    assert terms("hi", "वर्ष २०२३ में।") == ["वर्ष", "2023"]
    same_terms("hi", "लड़के", "लड़कों", "लड़का")
    assert terms("hi", "यह है और के का की") == []


# --- English and French ----------------------------------------------------------------------------------


def test_english_stemming_and_stop_words():
    same_terms("en", "running", "runs", "run")
    assert terms("en", "The Servers of Tokyo’s data-centre") == ["server", "tokyo", "data", "centr"]
    assert terms("en", "what is it and where") == []


def test_french_elision_and_stemming():
    same_terms("fr", "l'école", "L’école", "école", "écoles", "d'écoles")
    assert terms("fr", "qu'il est arrivé aujourd'hui jusqu'à Paris") == ["arriv", "aujourd'hui", "paris"]
    assert terms("fr", "le la les de des du et est") == []


def test_latin_words_match_across_tokenisers():
    expected = ["server", "tokyo"]
    for language in ("en", "ja", "zh", "ar", "hi"):
        assert terms(language, "Servers Tokyo") == expected, language


# --- generic ---------------------------------------------------------------------------------------------


def test_generic_words_and_cjk_bigrams():
    assert terms("und", "Привет, МИР!東京都庁 서울에서") == ["привет", "мир", "東京", "京都", "都庁", "서울", "울에", "에서"]
    assert terms("und", "x_y 日") == ["x", "y", "日"]


# --- properties every tokeniser must have ------------------------------------------------------------------

TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)),
    max_size=80,
) | st.text(
    alphabet=st.sampled_from(list("食べた東京のは、。！？ 　abcABCＡＢＣ123١٢٣والكتابُ ـ हिंदी़ँ। l'école’ \n\t\r\x00\u200b\u00ad")),
    max_size=60,
)


@pytest.mark.parametrize("language", LANGUAGES)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXT)
def test_terms_are_never_empty_nor_contain_whitespace(language, text):
    tokenizer = tokenizer_for(language)
    result = tokenizer.terms(text)
    assert all(isinstance(term, str) and term for term in result)
    assert not any(any(c.isspace() for c in term) for term in result)
    assert tokenizer.terms(text) == result  # deterministic


@given(text=TEXT)
@settings(max_examples=100, deadline=None)
def test_analyze_query_never_fails(text):
    result = analyze_query(text)
    assert len(result) == len(set(result))
    assert all(term and not any(c.isspace() for c in term) for term in result)


@pytest.mark.parametrize("language", ["ja", "zh", "ar", "hi", "en"])
def test_tokenisers_are_thread_safe(language):
    texts = {
        "ja": "東京は日本の首都です。子どもたちが公園で遊んでいた。",
        "zh": "黑豹队的防守只丢了308分，在联赛中排名第六。",
        "ar": "والكتاب في المدرسة الكبيرة مع المعلمين.",
        "hi": "लड़कों ने डिफ़ेंस में २४ अंक दिए।",
        "en": "The servers were running in Tokyo's data centres.",
    }
    samples = [texts[language] * n for n in range(1, 9)]
    expected = [tokenizer_for(language).terms(text) for text in samples]
    failures: list[str] = []

    def work() -> None:
        for _ in range(20):
            for text, want in zip(samples, expected):
                if tokenizer_for(language).terms(text) != want:
                    failures.append(text)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures


# --- detection -----------------------------------------------------------------------------------------

FRENCH_SENTENCES = [
    "Le conseil municipal a voté hier soir le budget de la nouvelle médiathèque.",
    "Les chercheurs de l'université ont publié leurs résultats dans une revue internationale.",
    "Il pleuvait depuis trois jours quand la rivière est enfin sortie de son lit.",
    "Nous avons réservé une table pour huit personnes dans un petit restaurant du quartier.",
    "La réunion est reportée à jeudi prochain, faute de quorum.",
    "Cette application permet de traduire des documents sans les envoyer sur Internet.",
    "Le musée expose cet été une collection de tableaux impressionnistes rarement montrés.",
    "Après la guerre, la ville a été reconstruite selon les plans d'un architecte célèbre.",
    "Les élèves doivent rendre leur devoir de mathématiques avant vendredi midi.",
    "On estime que la population de la région a doublé en cinquante ans.",
    "Le serveur principal a redémarré deux fois pendant la nuit sans raison apparente.",
    "Elle a toujours préféré la montagne à la mer, surtout en automne.",
    "Les agriculteurs craignent une nouvelle sécheresse cette année.",
    "Pour obtenir un passeport, il faut prendre rendez-vous à la mairie.",
    "Le train de Lyon est arrivé avec quarante minutes de retard.",
    "La loi prévoit des sanctions pour les entreprises qui ne respectent pas ces règles.",
    "Mon grand-père racontait souvent des histoires de son enfance à la campagne.",
    "Le gouvernement a annoncé une baisse des impôts pour les ménages modestes.",
    "Les résultats du sondage montrent une forte hausse de l'abstention.",
    "Il faut environ deux heures pour monter jusqu'au refuge.",
    "Le roman raconte l'histoire d'une famille d'ouvriers au début du siècle dernier.",
    "La banque centrale a décidé de maintenir ses taux directeurs inchangés.",
    "Les pompiers sont intervenus rapidement et personne n'a été blessé.",
    "Ce logiciel libre est développé par une communauté de bénévoles.",
    "La cathédrale, construite au treizième siècle, attire chaque année des milliers de visiteurs.",
    "Nous devons encore vérifier les chiffres avant de publier le rapport.",
    "L'équipe nationale s'est qualifiée pour la finale après une victoire difficile.",
    "Les prix de l'immobilier ont légèrement baissé dans les grandes villes.",
    "Il est interdit de fumer dans l'enceinte de l'établissement.",
    "Le directeur a félicité ses collaborateurs pour leur travail exceptionnel.",
    "Les abeilles jouent un rôle essentiel dans la pollinisation des plantes.",
    "La conférence aura lieu dans l'amphithéâtre principal à quatorze heures.",
    "Chaque participant recevra une attestation à la fin de la formation.",
    "Le climat de cette région est doux en hiver et chaud en été.",
    "La société a recruté cent vingt ingénieurs au cours de l'année écoulée.",
    "Ils se sont rencontrés pendant leurs études à Bordeaux.",
    "Le médecin lui a conseillé de se reposer pendant une semaine.",
    "La bibliothèque sera fermée pendant les vacances de Noël.",
    "Les négociations entre les syndicats et la direction ont échoué.",
    "On peut consulter les archives en ligne depuis le mois dernier.",
    "Le vent a arraché plusieurs arbres le long de la route nationale.",
    "Elle parle couramment l'anglais, l'espagnol et le japonais.",
    "Les données personnelles sont chiffrées et stockées sur nos propres serveurs.",
    "Le festival de cinéma accueille des réalisateurs du monde entier.",
    "Il a fallu attendre la fin du dix-neuvième siècle pour que l'électricité arrive au village.",
    "Le paquet devrait être livré d'ici mercredi.",
    "La pièce de théâtre a été jouée plus de deux cents fois.",
    "Nous recommandons de sauvegarder vos fichiers avant la mise à jour.",
    "Les enfants ont construit une cabane au fond du jardin.",
    "Selon la météo, il neigera demain sur les hauteurs.",
]
FRENCH_QUESTIONS = [
    "Quelle est la capitale de l'Australie ?",
    "Combien d'habitants compte la ville de Marseille ?",
    "Qui a écrit Les Misérables ?",
    "Quand la tour Eiffel a-t-elle été construite ?",
    "Pourquoi le ciel est-il bleu ?",
    "Comment fonctionne un moteur électrique ?",
    "Où se trouve le siège de l'entreprise ?",
    "Quel est le délai de livraison pour la Belgique ?",
    "Qu'est-ce que la photosynthèse ?",
    "Quels documents faut-il pour ouvrir un compte ?",
    "En quelle année la guerre a-t-elle pris fin ?",
    "Combien coûte l'abonnement annuel ?",
    "Qui est le président du conseil d'administration ?",
    "Comment réinitialiser mon mot de passe ?",
    "Quelle est la durée de la garantie ?",
    "Pourquoi la réunion a-t-elle été annulée ?",
    "Quels sont les horaires d'ouverture de la mairie ?",
    "Où puis-je trouver le formulaire de remboursement ?",
    "Quelle langue parle-t-on au Québec ?",
    "Combien de jours de congé avons-nous par an ?",
    "Qui a découvert la radioactivité ?",
    "Quelle est la plus haute montagne d'Europe ?",
    "Comment s'appelle le fleuve qui traverse Paris ?",
    "Quand commence la période des inscriptions ?",
    "Quel est le taux de chômage en France ?",
    "Pourquoi les feuilles changent-elles de couleur en automne ?",
    "À quelle heure part le dernier train ?",
    "Quelles sont les conditions pour obtenir une bourse ?",
    "Combien de temps faut-il pour cuire un œuf dur ?",
    "Qui a peint la Joconde ?",
    "Le serveur est-il sauvegardé chaque nuit ?",
    "Y a-t-il un parking près de la gare ?",
    "Faut-il un visa pour voyager au Japon ?",
    "Quelle est la politique de confidentialité de l'entreprise ?",
    "Comment contacter le service client ?",
    "Où est né Victor Hugo ?",
    "Quels sont les effets secondaires de ce médicament ?",
    "Combien pèse un éléphant adulte ?",
    "Quelle est la différence entre un virus et une bactérie ?",
    "Pourquoi la facture est-elle plus élevée ce mois-ci ?",
]


def dataset(language: str) -> tuple[list[str], list[str]]:
    """About 200 paragraphs and 200 questions of the language (every n-th, deterministic)."""
    path = DATA / ("jsquad/valid-v1.3.json" if language == "ja" else f"xquad/xquad.{language}.json")
    if not path.exists():
        pytest.skip(f"dataset not found: {path}")
    paragraphs, questions = [], []
    for article in json.loads(path.read_text())["data"]:
        for paragraph in article["paragraphs"]:
            paragraphs.append(paragraph["context"])
            questions.extend(qa["question"] for qa in paragraph["qas"])
    return paragraphs[:: max(1, len(paragraphs) // 200)], questions[:: max(1, len(questions) // 200)]


@pytest.mark.parametrize("language", ["en", "ar", "hi", "zh", "ja"])
def test_detection_accuracy_on_datasets(language):
    # measured on the full sets: 100 % of paragraphs; questions 100 % (ja 4,440 of 4,442)
    paragraphs, questions = dataset(language)
    for items in (paragraphs, questions):
        accuracy = sum(detect_language(text) == language for text in items) / len(items)
        assert accuracy >= 0.98, (language, accuracy)


def test_detection_accuracy_on_french():
    # measured: 50/50 sentences, 40/40 questions
    for items in (FRENCH_SENTENCES, FRENCH_QUESTIONS):
        assert sum(detect_language(text) == "fr" for text in items) / len(items) >= 0.95


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("東京都庁", "zh"),  # kanji only: indistinguishable, see analyze_query
        ("東京都庁へ行く", "ja"),
        ("ｶﾀｶﾅのテキスト", "ja"),
        ("MacBook Proを買った", "ja"),
        ("黑豹队的防守只丢了308分", "zh"),
        ("DECnet क्या है", "hi"),
        ("أين يقع Energiprojekt AB؟", "ar"),
        ("این یک متن فارسی است که برای آزمایش نوشته شده است", "fa"),
        ("Der schnelle braune Fuchs springt über den faulen Hund und läuft weiter.", "de"),
        ("Привет, как дела? Сегодня хорошая погода.", "ru"),
        ("서울에서 만나요", "ko"),
        ("server", "en"),
        ("data", "en"),
        ("serveur", "fr"),
        ("What is BM25?", "en"),
        ("", "und"),
        ("12345 !!!", "und"),
    ],
)
def test_detection_examples(text, language):
    assert detect_language(text) == language


# --- query analysis --------------------------------------------------------------------------------------


def test_kanji_only_query_uses_japanese_and_chinese_terms():
    query = "人工知能"
    result = analyze_query(query)
    assert set(terms("ja", query)) | set(terms("zh", query)) == set(result)
    assert len(result) == len(set(result))


def test_query_with_kana_is_japanese_only():
    assert analyze_query("東京都庁へ行く") == terms("ja", "東京都庁へ行く")


def test_cjk_inside_another_script_adds_cjk_terms():
    result = analyze_query("The meaning of the word 日本語 in English texts is well known")
    assert {"mean", "word", "english"} <= set(result)
    assert {"日本", "語"} <= set(result)


def test_short_latin_query_adds_the_other_language():
    assert set(analyze_query("serveurs")) == set(terms("en", "serveurs")) | set(terms("fr", "serveurs"))
    assert analyze_query("How many points did the Panthers defense surrender?") == terms(
        "en", "How many points did the Panthers defense surrender?"
    )
