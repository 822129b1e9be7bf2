//! The country a phone number belongs to, read from its calling code, for
//! the SMS-pumping guards.
//!
//! SMS pumping (toll fraud): bots request codes for numbers in ranges where
//! the terminating carrier shares the per-message fee with the fraudster,
//! typically premium ranges in small countries. Every such request costs the
//! operator real money and no user ever signs in. Two guards bound it:
//! `SMS_ALLOWED_COUNTRIES` keeps SMS and WhatsApp to the countries an app
//! actually serves ([`AllowedCountries`]), and an hourly cap per number
//! prefix ([`prefix_of`]) stops a run through one range.
//!
//! Only the calling code is read, never a full numbering plan: libphonenumber's
//! metadata would cost hundreds of KB of wasm, and the calling code is what
//! carriers bill by. A code shared by several countries resolves to all of
//! them (+7 is Russia and Kazakhstan, +44 the UK and the Crown Dependencies),
//! so listing any one of them allows the whole code.
//!
//! NANP note: +1 is shared by the US, Canada and twenty-odd Caribbean and
//! Pacific members. The members outside the US and Canada each have their
//! own area codes, and those resolve to their own country: they are billed
//! as international and are classic pumping destinations, so listing `US`
//! must not open them. US territories (PR, VI, GU, MP, AS) resolve to their
//! own ISO codes too; list them beside `US` to send there. Every other +1
//! number is mainland US or Canada, whose area codes are interleaved and
//! grow by overlays, so it resolves to both: a list with `US` or `CA`
//! allows any mainland +1 number.
//!
//! Codes that belong to no country (international freephone +800, shared
//! cost +808, Inmarsat +870, UPT +878, satellite +881, international
//! networks +882 and +883, +888, premium rate +979) and unassigned codes
//! resolve to `None`, and a number that resolves to `None` is refused
//! whenever a list is set: such numbers cannot be pinned to a country, and
//! several are premium by design.

use crate::domain::phone::Phone;

/// The calling code of the North American Numbering Plan.
const NANP: &str = "1";

/// How many leading digits [`prefix_of`] takes as the code of a number
/// whose calling code is unknown (the longest calling codes have 3).
const UNKNOWN_CODE_LEN: usize = 3;

/// Every assigned ITU-T E.164 country calling code with the ISO 3166-1
/// alpha-2 codes of the countries that use it, zone by zone. The codes are
/// prefix-free, as E.164 requires, so at most one matches a number.
#[rustfmt::skip]
const CALLING_CODES: &[(&str, &[&str])] = &[
    // Zone 1: NANP. The non-US/CA members are told apart by area code in
    // `NANP_AREAS`; this entry is the mainland.
    ("1", &["US", "CA"]),
    // Zone 2: mostly Africa. +247 Ascension and +290 Saint Helena and
    // Tristan da Cunha are all ISO `SH` (AC and TA are only reserved codes).
    ("20", &["EG"]), ("211", &["SS"]), ("212", &["MA", "EH"]), ("213", &["DZ"]), ("216", &["TN"]),
    ("218", &["LY"]), ("220", &["GM"]), ("221", &["SN"]), ("222", &["MR"]), ("223", &["ML"]),
    ("224", &["GN"]), ("225", &["CI"]), ("226", &["BF"]), ("227", &["NE"]), ("228", &["TG"]),
    ("229", &["BJ"]), ("230", &["MU"]), ("231", &["LR"]), ("232", &["SL"]), ("233", &["GH"]),
    ("234", &["NG"]), ("235", &["TD"]), ("236", &["CF"]), ("237", &["CM"]), ("238", &["CV"]),
    ("239", &["ST"]), ("240", &["GQ"]), ("241", &["GA"]), ("242", &["CG"]), ("243", &["CD"]),
    ("244", &["AO"]), ("245", &["GW"]), ("246", &["IO"]), ("247", &["SH"]), ("248", &["SC"]),
    ("249", &["SD"]), ("250", &["RW"]), ("251", &["ET"]), ("252", &["SO"]), ("253", &["DJ"]),
    ("254", &["KE"]), ("255", &["TZ"]), ("256", &["UG"]), ("257", &["BI"]), ("258", &["MZ"]),
    ("260", &["ZM"]), ("261", &["MG"]), ("262", &["RE", "YT"]), ("263", &["ZW"]), ("264", &["NA"]),
    ("265", &["MW"]), ("266", &["LS"]), ("267", &["BW"]), ("268", &["SZ"]), ("269", &["KM"]),
    ("27", &["ZA"]), ("290", &["SH"]), ("291", &["ER"]), ("297", &["AW"]), ("298", &["FO"]),
    ("299", &["GL"]),
    // Zone 3: Europe. +379 is assigned to the Vatican, which in practice
    // dials through Rome (+39 06 698). Kosovo's +383 carries `XK`, the
    // user-assigned code everyone (EU, CLDR, carriers) uses for it: without
    // it Kosovo could never be allowed.
    ("30", &["GR"]), ("31", &["NL"]), ("32", &["BE"]), ("33", &["FR"]), ("34", &["ES"]),
    ("350", &["GI"]), ("351", &["PT"]), ("352", &["LU"]), ("353", &["IE"]), ("354", &["IS"]),
    ("355", &["AL"]), ("356", &["MT"]), ("357", &["CY"]), ("358", &["FI", "AX"]), ("359", &["BG"]),
    ("36", &["HU"]), ("370", &["LT"]), ("371", &["LV"]), ("372", &["EE"]), ("373", &["MD"]),
    ("374", &["AM"]), ("375", &["BY"]), ("376", &["AD"]), ("377", &["MC"]), ("378", &["SM"]),
    ("379", &["VA"]), ("380", &["UA"]), ("381", &["RS"]), ("382", &["ME"]), ("383", &["XK"]),
    ("385", &["HR"]), ("386", &["SI"]), ("387", &["BA"]), ("389", &["MK"]), ("39", &["IT", "VA"]),
    // Zone 4: Europe.
    ("40", &["RO"]), ("41", &["CH"]), ("420", &["CZ"]), ("421", &["SK"]), ("423", &["LI"]),
    ("43", &["AT"]), ("44", &["GB", "GG", "IM", "JE"]), ("45", &["DK"]), ("46", &["SE"]),
    ("47", &["NO", "SJ"]), ("48", &["PL"]), ("49", &["DE"]),
    // Zone 5: Central and South America.
    ("500", &["FK", "GS"]), ("501", &["BZ"]), ("502", &["GT"]), ("503", &["SV"]), ("504", &["HN"]),
    ("505", &["NI"]), ("506", &["CR"]), ("507", &["PA"]), ("508", &["PM"]), ("509", &["HT"]),
    ("51", &["PE"]), ("52", &["MX"]), ("53", &["CU"]), ("54", &["AR"]), ("55", &["BR"]),
    ("56", &["CL"]), ("57", &["CO"]), ("58", &["VE"]), ("590", &["GP", "BL", "MF"]),
    ("591", &["BO"]), ("592", &["GY"]), ("593", &["EC"]), ("594", &["GF"]), ("595", &["PY"]),
    ("596", &["MQ"]), ("597", &["SR"]), ("598", &["UY"]), ("599", &["CW", "BQ"]),
    // Zone 6: Southeast Asia and Oceania. Pitcairn dials through New
    // Zealand; +672 is Norfolk Island.
    ("60", &["MY"]), ("61", &["AU", "CX", "CC"]), ("62", &["ID"]), ("63", &["PH"]),
    ("64", &["NZ", "PN"]), ("65", &["SG"]), ("66", &["TH"]), ("670", &["TL"]), ("672", &["NF"]),
    ("673", &["BN"]), ("674", &["NR"]), ("675", &["PG"]), ("676", &["TO"]), ("677", &["SB"]),
    ("678", &["VU"]), ("679", &["FJ"]), ("680", &["PW"]), ("681", &["WF"]), ("682", &["CK"]),
    ("683", &["NU"]), ("685", &["WS"]), ("686", &["KI"]), ("687", &["NC"]), ("688", &["TV"]),
    ("689", &["PF"]), ("690", &["TK"]), ("691", &["FM"]), ("692", &["MH"]),
    // Zone 7: Russia and Kazakhstan share one code.
    ("7", &["RU", "KZ"]),
    // Zone 8: East Asia. +800, +808, +870, +878, +881, +882, +883 and
    // +888 are global services, left out on purpose (see the module doc).
    ("81", &["JP"]), ("82", &["KR"]), ("84", &["VN"]), ("850", &["KP"]), ("852", &["HK"]),
    ("853", &["MO"]), ("855", &["KH"]), ("856", &["LA"]), ("86", &["CN"]), ("880", &["BD"]),
    ("886", &["TW"]),
    // Zone 9: West, Central and South Asia. +979 (premium rate) is a global
    // service, left out; +997 is Kazakhstan's own code, for its move off +7.
    ("90", &["TR"]), ("91", &["IN"]), ("92", &["PK"]), ("93", &["AF"]), ("94", &["LK"]),
    ("95", &["MM"]), ("960", &["MV"]), ("961", &["LB"]), ("962", &["JO"]), ("963", &["SY"]),
    ("964", &["IQ"]), ("965", &["KW"]), ("966", &["SA"]), ("967", &["YE"]), ("968", &["OM"]),
    ("970", &["PS"]), ("971", &["AE"]), ("972", &["IL"]), ("973", &["BH"]), ("974", &["QA"]),
    ("975", &["BT"]), ("976", &["MN"]), ("977", &["NP"]), ("98", &["IR"]), ("992", &["TJ"]),
    ("993", &["TM"]), ("994", &["AZ"]), ("995", &["GE"]), ("996", &["KG"]), ("997", &["KZ"]),
    ("998", &["UZ"]),
];

/// The +1 area codes of NANP members other than the US mainland and
/// Canada: Caribbean countries, then US territories, which have their own
/// ISO codes. Any other +1 number is US or Canada (see the module doc).
#[rustfmt::skip]
const NANP_AREAS: &[(&str, &[&str])] = &[
    ("242", &["BS"]), ("246", &["BB"]), ("264", &["AI"]), ("268", &["AG"]), ("284", &["VG"]),
    ("345", &["KY"]), ("441", &["BM"]), ("473", &["GD"]), ("649", &["TC"]), ("658", &["JM"]),
    ("664", &["MS"]), ("721", &["SX"]), ("758", &["LC"]), ("767", &["DM"]), ("784", &["VC"]),
    ("809", &["DO"]), ("829", &["DO"]), ("849", &["DO"]), ("868", &["TT"]), ("869", &["KN"]),
    ("876", &["JM"]),
    ("340", &["VI"]), ("670", &["MP"]), ("671", &["GU"]), ("684", &["AS"]), ("787", &["PR"]),
    ("939", &["PR"]),
];

/// Where a number's calling code puts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    calling_code: &'static str,
    countries: &'static [&'static str],
}

impl Region {
    /// The countries this calling code may belong to, as ISO alpha-2
    /// codes: one for most codes, several for shared ones (+7 is RU and
    /// KZ; mainland +1 is US and CA).
    pub fn countries(&self) -> &'static [&'static str] {
        self.countries
    }

    /// The calling code's digits: "44", "234", and "1" for every NANP
    /// number, Caribbean ones included (their area code is not a calling
    /// code).
    pub fn calling_code(&self) -> &'static str {
        self.calling_code
    }
}

/// The region of a number, from the longest calling code that matches its
/// digits. `None` for a code no country uses (+999 is unassigned, +882 is
/// an international network); such numbers are refused whenever a list is
/// set.
pub fn region_of(phone: &Phone) -> Option<Region> {
    let digits = digits_of(phone);
    let &(calling_code, countries) = CALLING_CODES
        .iter()
        .filter(|(code, _)| digits.starts_with(*code))
        .max_by_key(|(code, _)| code.len())?;
    let countries = if calling_code == NANP {
        let area = digits.get(1..4).unwrap_or("");
        NANP_AREAS
            .iter()
            .find(|(code, _)| *code == area)
            .map_or(countries, |&(_, member)| member)
    } else {
        countries
    };
    Some(Region {
        calling_code,
        countries,
    })
}

/// `SMS_ALLOWED_COUNTRIES`: the countries SMS and WhatsApp codes may go
/// to. Empty means every country.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedCountries(
    /// Sorted and deduplicated upper-case alpha-2 codes, each in the table.
    Vec<String>,
);

impl AllowedCountries {
    /// A comma- or space-separated list of ISO 3166-1 alpha-2 codes, in any
    /// case. Each must be the code of a country in the table, so a typo
    /// fails at load rather than silently blocking a country. An empty
    /// string allows every country.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut codes = raw
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                let upper = entry.to_ascii_uppercase();
                known_country(&upper).map(str::to_owned).ok_or_else(|| {
                    format!(
                        "var SMS_ALLOWED_COUNTRIES: `{entry}` is not an ISO 3166 alpha-2 country code{}",
                        hint(&upper)
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        codes.sort_unstable();
        codes.dedup();
        Ok(Self(codes))
    }

    pub fn is_everywhere(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a send to `phone` may go out: always with an empty list;
    /// otherwise only when the number's region has at least one country in
    /// the list, so a number whose code no country holds is refused.
    pub fn allows(&self, phone: &Phone) -> bool {
        if self.is_everywhere() {
            return true;
        }
        region_of(phone).is_some_and(|region| region.countries().iter().any(|c| self.contains(c)))
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    fn contains(&self, country: &str) -> bool {
        self.0.binary_search_by(|c| c.as_str().cmp(country)).is_ok()
    }
}

/// The table's spelling of an upper-case country code, if it has one.
fn known_country(code: &str) -> Option<&'static str> {
    CALLING_CODES
        .iter()
        .chain(NANP_AREAS)
        .flat_map(|&(_, countries)| countries)
        .copied()
        .find(|c| *c == code)
}

/// The end of the error for an unknown code: the right code for the usual
/// mistakes, an example otherwise.
fn hint(code: &str) -> &'static str {
    match code {
        "UK" => "; the United Kingdom is `GB`",
        "EL" => "; Greece is `GR`",
        _ => " of a country with a calling code, like US, GB or DE",
    }
}

/// The number's first `digits` digits after its calling code, prefixed
/// with the calling code and a dash: `+447700900123` with 7 gives
/// `44-7700900`. A national number shorter than `digits` is taken whole.
/// An unknown calling code is taken to be the first 3 digits. NANP numbers
/// have code `1`, so their digits are area code, exchange, and so on.
pub fn prefix_of(phone: &Phone, digits: usize) -> String {
    let all = digits_of(phone);
    let code_len = region_of(phone).map_or(UNKNOWN_CODE_LEN, |r| r.calling_code().len());
    let (code, national) = all.split_at_checked(code_len).unwrap_or((all, ""));
    let head = national.get(..digits).unwrap_or(national);
    format!("{code}-{head}")
}

/// The number without its `+`.
fn digits_of(phone: &Phone) -> &str {
    phone.as_str().trim_start_matches('+')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone(raw: &str) -> Phone {
        Phone::parse(raw).unwrap()
    }

    fn countries_of(raw: &str) -> Option<&'static [&'static str]> {
        region_of(&phone(raw)).map(|r| r.countries())
    }

    fn list(raw: &str) -> AllowedCountries {
        AllowedCountries::parse(raw).unwrap()
    }

    #[test]
    fn numbers_resolve_to_their_countries() {
        let cases: &[(&str, &[&str])] = &[
            ("+14155550123", &["US", "CA"]),
            ("+16135550123", &["US", "CA"]),
            ("+18765550123", &["JM"]),
            ("+16585550123", &["JM"]),
            ("+17875550123", &["PR"]),
            ("+18095550123", &["DO"]),
            ("+12425550123", &["BS"]),
            ("+447700900123", &["GB", "GG", "IM", "JE"]),
            ("+33612345678", &["FR"]),
            ("+4915112345678", &["DE"]),
            ("+35891234567", &["FI", "AX"]),
            ("+919812345678", &["IN"]),
            ("+97150123456", &["AE"]),
            ("+5511912345678", &["BR"]),
            ("+59069012345", &["GP", "BL", "MF"]),
            ("+61412345678", &["AU", "CX", "CC"]),
            ("+6421234567", &["NZ", "PN"]),
            ("+8613800138000", &["CN"]),
            ("+2348031234567", &["NG"]),
            ("+2693212345", &["KM"]),
            ("+79161234567", &["RU", "KZ"]),
        ];
        for &(raw, want) in cases {
            assert_eq!(countries_of(raw), Some(want), "{raw}");
        }
    }

    #[test]
    fn global_services_and_unassigned_codes_have_no_region() {
        for raw in [
            "+88212345678",
            "+80012345678",
            "+87012345678",
            "+99912345678",
            "+2151234567",
        ] {
            assert_eq!(region_of(&phone(raw)), None, "{raw}");
        }
    }

    #[test]
    fn calling_code_is_the_itu_code() {
        for (raw, want) in [
            ("+14155550123", "1"),
            ("+18765550123", "1"),
            ("+447700900123", "44"),
            ("+2348031234567", "234"),
            ("+79161234567", "7"),
        ] {
            assert_eq!(
                region_of(&phone(raw)).map(|r| r.calling_code()),
                Some(want),
                "{raw}"
            );
        }
    }

    #[test]
    fn calling_codes_are_short_digits_and_prefix_free() {
        for (i, (code, countries)) in CALLING_CODES.iter().enumerate() {
            assert!((1..=3).contains(&code.len()), "{code}");
            assert!(code.bytes().all(|b| b.is_ascii_digit()), "{code}");
            assert!(!countries.is_empty(), "{code}");
            for (j, (other, _)) in CALLING_CODES.iter().enumerate() {
                // Covers duplicates too: a code is a prefix of itself.
                assert!(
                    i == j || !other.starts_with(*code),
                    "{code} is a prefix of {other}"
                );
            }
        }
    }

    #[test]
    fn nanp_areas_are_unique_three_digit_codes() {
        for (i, (area, countries)) in NANP_AREAS.iter().enumerate() {
            assert_eq!(area.len(), 3, "{area}");
            assert!(area.bytes().all(|b| b.is_ascii_digit()), "{area}");
            assert!(!countries.is_empty(), "{area}");
            for (j, (other, _)) in NANP_AREAS.iter().enumerate() {
                assert!(i == j || area != other, "{area} twice");
            }
        }
    }

    #[test]
    fn every_country_in_the_table_parses() {
        for &(_, countries) in CALLING_CODES.iter().chain(NANP_AREAS) {
            for country in countries {
                assert!(
                    country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase()),
                    "{country}"
                );
                assert_eq!(list(country).iter().collect::<Vec<_>>(), [*country]);
                let lower = country.to_ascii_lowercase();
                assert_eq!(list(&lower).iter().collect::<Vec<_>>(), [*country]);
            }
        }
    }

    #[test]
    fn parse_reads_a_list() {
        for empty in ["", "  ", " , ,"] {
            assert!(list(empty).is_everywhere(), "{empty:?}");
        }
        let countries = list(" us, gb de,,FR\tjm ");
        assert!(!countries.is_everywhere());
        assert_eq!(
            countries.iter().collect::<Vec<_>>(),
            ["DE", "FR", "GB", "JM", "US"]
        );
        assert_eq!(list("US us,Us").iter().collect::<Vec<_>>(), ["US"]);
    }

    #[test]
    fn parse_refuses_unknown_codes() {
        let err = AllowedCountries::parse("US, UK").unwrap_err();
        assert!(err.contains("SMS_ALLOWED_COUNTRIES"), "{err}");
        assert!(err.contains("`UK`") && err.contains("`GB`"), "{err}");
        for bad in ["XX", "US,XX", "USA", "u", "BV", "1"] {
            let err = AllowedCountries::parse(bad).unwrap_err();
            assert!(err.starts_with("var SMS_ALLOWED_COUNTRIES: `"), "{err}");
        }
    }

    #[test]
    fn an_empty_list_allows_everything() {
        let everywhere = AllowedCountries::default();
        for raw in [
            "+14155550123",
            "+18765550123",
            "+88212345678",
            "+99912345678",
        ] {
            assert!(everywhere.allows(&phone(raw)), "{raw}");
        }
    }

    #[test]
    fn a_list_allows_only_its_countries() {
        let us = list("US");
        assert!(us.allows(&phone("+14155550123")));
        assert!(!us.allows(&phone("+18765550123")));
        assert!(!us.allows(&phone("+17875550123")));
        assert!(!us.allows(&phone("+447700900123")));
        assert!(!us.allows(&phone("+88212345678")));

        // Mainland +1 is US and Canada alike.
        assert!(list("CA").allows(&phone("+14155550123")));

        let jm = list("JM");
        assert!(jm.allows(&phone("+18765550123")));
        assert!(jm.allows(&phone("+16585550123")));
        assert!(!jm.allows(&phone("+14155550123")));

        // A shared code is allowed by any of its countries.
        assert!(list("KZ").allows(&phone("+79161234567")));
        assert!(list("je").allows(&phone("+447700900123")));

        let europe = list("FR,DE");
        assert!(europe.allows(&phone("+33612345678")));
        assert!(!europe.allows(&phone("+80012345678")));
    }

    #[test]
    fn prefix_is_code_then_national_digits() {
        for (raw, digits, want) in [
            ("+447700900123", 7, "44-7700900"),
            ("+14155550123", 7, "1-4155550"),
            ("+18765550123", 3, "1-876"),
            ("+79161234567", 3, "7-916"),
            ("+2348031234567", 4, "234-8031"),
            ("+3312345", 7, "33-12345"),
            ("+88212345678", 4, "882-1234"),
            ("+447700900123", 0, "44-"),
        ] {
            assert_eq!(prefix_of(&phone(raw), digits), want, "{raw} {digits}");
        }
    }
}
