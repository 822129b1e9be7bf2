//! The languages built-in code messages are written in. People read a code
//! faster, and trust it more, in their own language: an API request's
//! `locale` field, or the account flows' `Accept-Language` header, picks
//! one. A tag falls back by its language (`pt-PT` and `pt-BR` both get
//! Portuguese), then to English. Operator templates (`TEMPLATES`) still
//! replace these words whatever the language.

/// A language the built-in messages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Locale {
    #[default]
    En,
    Es,
    Fr,
    De,
    Pt,
    Hi,
}

const MAX_TAG_LEN: usize = 35;
const MAX_ACCEPT_LANGUAGE_LEN: usize = 1024;
const TAG_PROBLEM: &str =
    "field `locale` must be a BCP 47 language tag, like `en`, `pt-BR` or `fr-CA`";

impl Locale {
    pub const ALL: [Locale; 6] = [
        Locale::En,
        Locale::Es,
        Locale::Fr,
        Locale::De,
        Locale::Pt,
        Locale::Hi,
    ];

    /// "en", "es", "fr", "de", "pt", "hi"
    pub fn tag(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::Es => "es",
            Locale::Fr => "fr",
            Locale::De => "de",
            Locale::Pt => "pt",
            Locale::Hi => "hi",
        }
    }

    /// The built-in locale for a tag, by its primary language subtag:
    /// "pt-BR" → Pt, "fr-CA" → Fr, "zh-Hant" → None (the caller falls back
    /// to English).
    pub fn for_tag(tag: &LanguageTag) -> Option<Locale> {
        let language = tag.language();
        Self::ALL.into_iter().find(|l| l.tag() == language)
    }

    /// From an `Accept-Language` header: the built-in language of the
    /// entry with the highest q (ties: the first listed). `q=0` entries and
    /// `*` are never chosen, malformed entries are skipped, and a header
    /// longer than 1024 bytes is ignored. None when nothing matches.
    pub fn from_accept_language(header: &str) -> Option<Locale> {
        if header.len() > MAX_ACCEPT_LANGUAGE_LEN {
            return None;
        }
        let mut best: Option<(u16, Locale)> = None;
        for entry in header.split(',') {
            let mut parts = entry.split(';');
            let range = parts.next().unwrap_or("").trim();
            let Some(q) = weight(parts) else { continue };
            // `*` and malformed ranges do not parse as tags.
            let Ok(tag) = LanguageTag::parse(range) else {
                continue;
            };
            let Some(locale) = Locale::for_tag(&tag) else {
                continue;
            };
            if q > 0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, locale));
            }
        }
        best.map(|(_, locale)| locale)
    }

    /// Whether an integer count takes the CLDR plural category "one":
    /// en, es, de: n = 1; fr: i = 0,1; pt (Brazil's rule, for pt-PT too):
    /// i = 0..1; hi: i = 0 or n = 1.
    pub fn is_one(self, n: u64) -> bool {
        match self {
            Locale::En | Locale::Es | Locale::De => n == 1,
            Locale::Fr | Locale::Pt | Locale::Hi => n <= 1,
        }
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Locale::En => &EN,
            Locale::Es => &ES,
            Locale::Fr => &FR,
            Locale::De => &DE,
            Locale::Pt => &PT,
            Locale::Hi => &HI,
        }
    }
}

/// An `Accept-Language` entry's parameters as a weight in thousandths:
/// 1000 without `q`, None when a `q` is malformed.
fn weight<'a>(params: impl Iterator<Item = &'a str>) -> Option<u16> {
    let mut q = 1000;
    for param in params.map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = param.split_once('=')?;
        if name.trim().eq_ignore_ascii_case("q") {
            q = qvalue(value.trim())?;
        }
    }
    Some(q)
}

/// RFC 9110's qvalue, `0` to `1` with up to three decimals, in thousandths.
fn qvalue(s: &str) -> Option<u16> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let int: u16 = match int {
        "0" => 0,
        "1" => 1,
        _ => return None,
    };
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac: u16 = format!("{frac:0<3}").parse().ok()?;
    let q = int * 1000 + frac;
    (q <= 1000).then_some(q)
}

/// A well-formed BCP 47 language tag as an API request's `locale` field
/// takes it: 1 to 35 chars; subtags of 1 to 8 ASCII letters and digits
/// joined by '-'; the first one 2 or 3 letters (an ISO 639 language).
/// Case is kept as given; tags compare case-insensitively by language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanguageTag(String);

impl LanguageTag {
    /// Err is the sentence for a 400 problem.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let well_formed = (1..=MAX_TAG_LEN).contains(&raw.len())
            && raw.split('-').enumerate().all(|(i, sub)| {
                if i == 0 {
                    (2..=3).contains(&sub.len()) && sub.bytes().all(|b| b.is_ascii_alphabetic())
                } else {
                    (1..=8).contains(&sub.len()) && sub.bytes().all(|b| b.is_ascii_alphanumeric())
                }
            });
        match well_formed {
            true => Ok(Self(raw.to_owned())),
            false => Err(TAG_PROBLEM.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Lower-cased primary language subtag.
    pub fn language(&self) -> String {
        let primary = self.0.split('-').next().unwrap_or("");
        primary.to_ascii_lowercase()
    }
}

/// The built-in words of code messages in one language. Placeholders:
/// `{{code}}`, `{{app_name}}`, `{{minutes}}` (the number only); every
/// language has the same placeholders in the same field.
#[derive(Debug)]
pub struct Texts {
    /// Subjects start with `{{code}}`: notifications show the code.
    pub verify_subject: &'static str,
    pub verify_intro: &'static str,
    pub reset_subject: &'static str,
    pub reset_intro: &'static str,
    pub login_subject: &'static str,
    pub login_intro: &'static str,
    pub app_subject: &'static str,
    pub app_intro: &'static str,
    /// Plural forms, chosen with `Locale::is_one(minutes)`.
    pub expiry_one: &'static str,
    pub expiry_other: &'static str,
    pub ignore: &'static str,
    /// SMS and WhatsApp bodies: one short line, the code first.
    pub sms_one: &'static str,
    pub sms_other: &'static str,
}

static EN: Texts = Texts {
    verify_subject: "{{code}} is your {{app_name}} verification code",
    verify_intro: "Use this code to verify your email address for {{app_name}}:",
    reset_subject: "{{code}} is your {{app_name}} password reset code",
    reset_intro: "Use this code to reset your password for {{app_name}}:",
    login_subject: "{{code}} is your {{app_name}} sign-in code",
    login_intro: "Use this code to sign in to {{app_name}}:",
    app_subject: "{{code}} is your {{app_name}} code",
    app_intro: "Here is your {{app_name}} code:",
    expiry_one: "It expires in {{minutes}} minute and works once.",
    expiry_other: "It expires in {{minutes}} minutes and works once.",
    ignore: "If you didn't ask for this, ignore this email: nothing changes without the code.",
    sms_one:
        "{{code}} is your {{app_name}} code. It expires in {{minutes}} minute. Don't share it.",
    sms_other:
        "{{code}} is your {{app_name}} code. It expires in {{minutes}} minutes. Don't share it.",
};

static ES: Texts = Texts {
    verify_subject: "{{code}} es tu código de verificación de {{app_name}}",
    verify_intro:
        "Usa este código para verificar tu dirección de correo electrónico en {{app_name}}:",
    reset_subject: "{{code}} es tu código para restablecer la contraseña de {{app_name}}",
    reset_intro: "Usa este código para restablecer tu contraseña de {{app_name}}:",
    login_subject: "{{code}} es tu código para iniciar sesión en {{app_name}}",
    login_intro: "Usa este código para iniciar sesión en {{app_name}}:",
    app_subject: "{{code}} es tu código de {{app_name}}",
    app_intro: "Este es tu código de {{app_name}}:",
    expiry_one: "Expira en {{minutes}} minuto y solo se puede usar una vez.",
    expiry_other: "Expira en {{minutes}} minutos y solo se puede usar una vez.",
    ignore: "Si no lo solicitaste, ignora este correo: nada cambia sin el código.",
    sms_one:
        "{{code}} es tu código de {{app_name}}. Expira en {{minutes}} minuto. No lo compartas.",
    sms_other:
        "{{code}} es tu código de {{app_name}}. Expira en {{minutes}} minutos. No lo compartas.",
};

// French typography: a no-break space (U+00A0) before a colon.
static FR: Texts = Texts {
    verify_subject: "{{code}} est votre code de vérification {{app_name}}",
    verify_intro: "Utilisez ce code pour vérifier votre adresse e-mail sur {{app_name}}\u{a0}:",
    reset_subject: "{{code}} est votre code de réinitialisation du mot de passe {{app_name}}",
    reset_intro: "Utilisez ce code pour réinitialiser votre mot de passe {{app_name}}\u{a0}:",
    login_subject: "{{code}} est votre code de connexion {{app_name}}",
    login_intro: "Utilisez ce code pour vous connecter à {{app_name}}\u{a0}:",
    app_subject: "{{code}} est votre code {{app_name}}",
    app_intro: "Voici votre code {{app_name}}\u{a0}:",
    expiry_one: "Il expire dans {{minutes}} minute et ne peut servir qu'une fois.",
    expiry_other: "Il expire dans {{minutes}} minutes et ne peut servir qu'une fois.",
    ignore: "Si vous n'avez rien demandé, ignorez cet e-mail\u{a0}: rien ne change sans le code.",
    sms_one: "{{code}} est votre code {{app_name}}. Il expire dans {{minutes}} minute. Ne le partagez pas.",
    sms_other: "{{code}} est votre code {{app_name}}. Il expire dans {{minutes}} minutes. Ne le partagez pas.",
};

static DE: Texts = Texts {
    verify_subject: "{{code}} ist Ihr Bestätigungscode für {{app_name}}",
    verify_intro: "Verwenden Sie diesen Code, um Ihre E-Mail-Adresse für {{app_name}} zu bestätigen:",
    reset_subject: "{{code}} ist Ihr Code zum Zurücksetzen des Passworts für {{app_name}}",
    reset_intro: "Verwenden Sie diesen Code, um Ihr Passwort für {{app_name}} zurückzusetzen:",
    login_subject: "{{code}} ist Ihr Anmeldecode für {{app_name}}",
    login_intro: "Verwenden Sie diesen Code, um sich bei {{app_name}} anzumelden:",
    app_subject: "{{code}} ist Ihr Code für {{app_name}}",
    app_intro: "Hier ist Ihr Code für {{app_name}}:",
    expiry_one: "Der Code ist {{minutes}} Minute lang gültig und nur einmal verwendbar.",
    expiry_other: "Der Code ist {{minutes}} Minuten lang gültig und nur einmal verwendbar.",
    ignore: "Falls Sie das nicht angefordert haben, ignorieren Sie diese E-Mail: Ohne den Code ändert sich nichts.",
    sms_one: "{{code}} ist Ihr Code für {{app_name}}. {{minutes}} Minute gültig. Geben Sie ihn nicht weiter.",
    sms_other: "{{code}} ist Ihr Code für {{app_name}}. {{minutes}} Minuten gültig. Geben Sie ihn nicht weiter.",
};

// Brazilian Portuguese; app names take the masculine article ("o app").
static PT: Texts = Texts {
    verify_subject: "{{code}} é seu código de verificação do {{app_name}}",
    verify_intro: "Use este código para verificar seu endereço de e-mail no {{app_name}}:",
    reset_subject: "{{code}} é seu código de redefinição de senha do {{app_name}}",
    reset_intro: "Use este código para redefinir sua senha do {{app_name}}:",
    login_subject: "{{code}} é seu código de acesso do {{app_name}}",
    login_intro: "Use este código para entrar no {{app_name}}:",
    app_subject: "{{code}} é seu código do {{app_name}}",
    app_intro: "Aqui está seu código do {{app_name}}:",
    expiry_one: "Ele expira em {{minutes}} minuto e só pode ser usado uma vez.",
    expiry_other: "Ele expira em {{minutes}} minutos e só pode ser usado uma vez.",
    ignore: "Se você não pediu este código, ignore este e-mail: nada muda sem ele.",
    sms_one: "{{code}} é seu código do {{app_name}}. Expira em {{minutes}} minuto. Não compartilhe com ninguém.",
    sms_other: "{{code}} é seu código do {{app_name}}. Expira em {{minutes}} minutos. Não compartilhe com ninguém.",
};

static HI: Texts = Texts {
    verify_subject: "{{code}} आपका {{app_name}} सत्यापन कोड है",
    verify_intro: "{{app_name}} के लिए अपना ईमेल पता सत्यापित करने हेतु इस कोड का उपयोग करें:",
    reset_subject: "{{code}} आपका {{app_name}} पासवर्ड रीसेट कोड है",
    reset_intro: "{{app_name}} पर अपना पासवर्ड रीसेट करने के लिए इस कोड का उपयोग करें:",
    login_subject: "{{code}} आपका {{app_name}} साइन-इन कोड है",
    login_intro: "{{app_name}} में साइन इन करने के लिए इस कोड का उपयोग करें:",
    app_subject: "{{code}} आपका {{app_name}} कोड है",
    app_intro: "यह रहा आपका {{app_name}} कोड:",
    expiry_one: "यह {{minutes}} मिनट में समाप्त हो जाएगा और केवल एक बार काम करेगा।",
    expiry_other: "यह {{minutes}} मिनट में समाप्त हो जाएगा और केवल एक बार काम करेगा।",
    ignore: "अगर आपने इसका अनुरोध नहीं किया था, तो इस ईमेल को अनदेखा करें: कोड के बिना कुछ नहीं बदलेगा।",
    sms_one:
        "{{code}} आपका {{app_name}} कोड है। यह {{minutes}} मिनट में समाप्त होगा। इसे किसी से साझा न करें।",
    sms_other:
        "{{code}} आपका {{app_name}} कोड है। यह {{minutes}} मिनट में समाप्त होगा। इसे किसी से साझा न करें।",
};

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn fields(t: &Texts) -> [(&'static str, &'static str); 13] {
        [
            ("verify_subject", t.verify_subject),
            ("verify_intro", t.verify_intro),
            ("reset_subject", t.reset_subject),
            ("reset_intro", t.reset_intro),
            ("login_subject", t.login_subject),
            ("login_intro", t.login_intro),
            ("app_subject", t.app_subject),
            ("app_intro", t.app_intro),
            ("expiry_one", t.expiry_one),
            ("expiry_other", t.expiry_other),
            ("ignore", t.ignore),
            ("sms_one", t.sms_one),
            ("sms_other", t.sms_other),
        ]
    }

    /// The trimmed names inside `{{ }}`; an unclosed `{{` fails the test.
    fn names(t: &str) -> BTreeSet<&str> {
        t.split("{{")
            .skip(1)
            .map(|rest| match rest.split_once("}}") {
                Some((name, _)) => name.trim(),
                None => panic!("unclosed {{{{ in {t:?}"),
            })
            .collect()
    }

    fn fill(t: &str) -> String {
        t.replace("{{code}}", "123456")
            .replace("{{app_name}}", "Abcdefghij")
            .replace("{{minutes}}", "10")
    }

    #[test]
    fn every_language_has_the_placeholders_of_english() {
        let en = fields(Locale::En.texts());
        for locale in Locale::ALL {
            for ((name, text), (_, english)) in fields(locale.texts()).into_iter().zip(en) {
                let at = format!("{}.{name}", locale.tag());
                assert_eq!(names(text), names(english), "{at}: {text:?}");
                assert!(!text.trim().is_empty(), "{at}");
                if name.ends_with("_subject") || name.starts_with("sms_") {
                    assert!(text.starts_with("{{code}}"), "{at} starts with the code");
                }
                if name.ends_with("_intro") {
                    assert!(text.contains("{{app_name}}"), "{at} names the app");
                }
                if name.starts_with("sms_") {
                    assert!(!text.contains('\n'), "{at} is one line");
                    let n = fill(text).chars().count();
                    assert!(n <= 120, "{at} is {n} chars");
                }
            }
        }
    }

    #[test]
    fn english_reads_as_before() {
        let t = Locale::En.texts();
        assert_eq!(
            fill(t.expiry_one).replace("10", "1"),
            "It expires in 1 minute and works once."
        );
        assert_eq!(
            fill(t.sms_other),
            "123456 is your Abcdefghij code. It expires in 10 minutes. Don't share it."
        );
    }

    #[test]
    fn plural_one_follows_cldr() {
        use Locale::*;
        let counts = [0, 1, 2, 5, 21];
        for (locale, ones) in [
            (En, [false, true, false, false, false]),
            (Es, [false, true, false, false, false]),
            (De, [false, true, false, false, false]),
            (Fr, [true, true, false, false, false]),
            (Pt, [true, true, false, false, false]),
            (Hi, [true, true, false, false, false]),
        ] {
            for (n, one) in counts.into_iter().zip(ones) {
                assert_eq!(locale.is_one(n), one, "{locale:?} {n}");
            }
        }
    }

    #[test]
    fn tags_parse_when_well_formed() {
        for ok in ["en", "pt-BR", "zh-Hant-TW", "es-419", "sr-Latn-RS", "EN-us"] {
            let tag = LanguageTag::parse(ok).unwrap();
            assert_eq!(tag.as_str(), ok, "case is kept");
        }
        assert_eq!(LanguageTag::parse("EN-us").unwrap().language(), "en");
        let long = format!("en-{}", ["abcdefgh"; 4].join("-"));
        assert_eq!(long.len(), 38);
        for bad in [
            "",
            "e",
            "english-language",
            "en_US",
            "en--US",
            "-en",
            "en-",
            "12",
            "en-toolongsubtag",
            long.as_str(),
            "fr-ÇA",
            "日本",
            " en",
        ] {
            let e = LanguageTag::parse(bad).unwrap_err();
            assert!(
                e.contains("field `locale` must be a BCP 47"),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn tags_fall_back_by_language() {
        for (raw, want) in [
            ("pt-BR", Some(Locale::Pt)),
            ("PT-pt", Some(Locale::Pt)),
            ("fr-CA", Some(Locale::Fr)),
            ("de-AT", Some(Locale::De)),
            ("hi-IN", Some(Locale::Hi)),
            ("ES", Some(Locale::Es)),
            ("zh", None),
            ("zh-Hant", None),
        ] {
            let tag = LanguageTag::parse(raw).unwrap();
            assert_eq!(Locale::for_tag(&tag), want, "{raw}");
        }
        for locale in Locale::ALL {
            let tag = LanguageTag::parse(locale.tag()).unwrap();
            assert_eq!(Locale::for_tag(&tag), Some(locale));
        }
    }

    #[test]
    fn accept_language_picks_the_best_built_in_entry() {
        for (header, want) in [
            (
                "fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5",
                Some(Locale::Fr),
            ),
            ("zh-CN,zh;q=0.9,es;q=0.8", Some(Locale::Es)),
            ("de;q=0.1, pt;q=0.9", Some(Locale::Pt)),
            ("en;q=0, hi", Some(Locale::Hi)),
            ("de, fr", Some(Locale::De)),
            ("de;q=0.5, fr;q=0.500", Some(Locale::De)),
            ("es;Q=1.000", Some(Locale::Es)),
            ("*, pt;q=0.001", Some(Locale::Pt)),
            ("en;q=2, fr;q=0.5x, de;q=0.3", Some(Locale::De)),
            ("xx", None),
            ("", None),
            (";;;q=,,", None),
            ("en;q=0", None),
            ("*", None),
            (",;=,q=1;,-;q", None),
        ] {
            assert_eq!(Locale::from_accept_language(header), want, "{header:?}");
        }
        let long = format!("hi,{}", "x".repeat(1024));
        assert_eq!(Locale::from_accept_language(&long), None);
    }
}
