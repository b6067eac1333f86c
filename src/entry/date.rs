//! Publication dates: every form the data contract allows, resolved in a time zone.
//!
//! Accepted values are a TOML date or datetime, or a string in one of the forms
//! `YYYY-MM-DD`, RFC 3339, `DD.MM.YYYY` or `DD.MM.YYYY HH:MM`. A value without an
//! offset is local time in the given zone (DST-correct through chrono-tz); a date
//! alone means 00:00 local.

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, TimeZone,
};
use chrono_tz::Tz;

/// A date value as it appears in front matter, before it is resolved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(untagged)]
pub enum RawDate {
    /// A TOML date or datetime literal, e.g. `date = 2022-08-22`.
    Toml(toml::value::Datetime),
    /// A string such as `"22.08.2022"`.
    Text(String),
}

/// Resolves a raw date in `zone`; the error message is ready for a diagnostic.
pub fn resolve(raw: &RawDate, zone: Tz) -> Result<DateTime<FixedOffset>, String> {
    match raw {
        RawDate::Toml(dt) => resolve_toml(dt, zone),
        RawDate::Text(s) => parse_str(s, zone),
    }
}

fn resolve_toml(dt: &toml::value::Datetime, zone: Tz) -> Result<DateTime<FixedOffset>, String> {
    let Some(d) = dt.date else {
        return Err(format!(
            "{dt} is a time without a date; write a date such as 2022-08-22"
        ));
    };
    let date = ymd(i32::from(d.year), u32::from(d.month), u32::from(d.day))?;
    let (h, m, s, nanos) = dt.time.map_or((0, 0, 0, 0), |t| {
        (
            u32::from(t.hour),
            u32::from(t.minute),
            u32::from(t.second.unwrap_or(0)),
            t.nanosecond.unwrap_or(0),
        )
    });
    let naive = date
        .and_hms_nano_opt(h, m, s, nanos)
        .ok_or_else(|| format!("no such time: {dt}"))?;
    match dt.offset {
        None => Ok(in_zone(naive, zone)),
        Some(offset) => {
            let minutes = match offset {
                toml::value::Offset::Z => 0,
                toml::value::Offset::Custom { minutes } => i32::from(minutes),
            };
            let fixed = FixedOffset::east_opt(minutes * 60)
                .ok_or_else(|| format!("offset out of range in {dt}"))?;
            fixed
                .from_local_datetime(&naive)
                .single()
                .ok_or_else(|| format!("no such time: {dt}"))
        }
    }
}

/// Parses a date string in one of the contract's forms.
pub fn parse_str(s: &str, zone: Tz) -> Result<DateTime<FixedOffset>, String> {
    let t = s.trim();
    let bytes = t.as_bytes();
    let is_digits = |r: std::ops::Range<usize>| bytes[r].iter().all(u8::is_ascii_digit);
    let num = |r: std::ops::Range<usize>| -> u32 { t[r].parse().unwrap_or(0) };

    // DD.MM.YYYY and DD.MM.YYYY HH:MM, as Russian news pages write them.
    if bytes.len() >= 10
        && bytes[2] == b'.'
        && bytes[5] == b'.'
        && is_digits(0..2)
        && is_digits(3..5)
        && is_digits(6..10)
    {
        let date =
            ymd(num(6..10) as i32, num(3..5), num(0..2)).map_err(|e| format!("{e} ({t})"))?;
        let rest = &t[10..];
        if rest.is_empty() {
            return Ok(in_zone(date.and_time(chrono::NaiveTime::MIN), zone));
        }
        let rb = rest.as_bytes();
        if rb.len() == 6
            && rb[0] == b' '
            && rb[3] == b':'
            && rest[1..3]
                .bytes()
                .chain(rest[4..6].bytes())
                .all(|b| b.is_ascii_digit())
        {
            let (h, m) = (num(11..13), num(14..16));
            let naive = date
                .and_hms_opt(h, m, 0)
                .ok_or_else(|| format!("no such time: {t}"))?;
            return Ok(in_zone(naive, zone));
        }
        return Err(unknown_form(t));
    }

    // YYYY-MM-DD alone.
    if bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && is_digits(0..4)
        && is_digits(5..7)
        && is_digits(8..10)
    {
        let date =
            ymd(num(0..4) as i32, num(5..7), num(8..10)).map_err(|e| format!("{e} ({t})"))?;
        return Ok(in_zone(date.and_time(chrono::NaiveTime::MIN), zone));
    }

    // RFC 3339, which carries its own offset.
    if bytes.len() > 10 && bytes[4] == b'-' && bytes[7] == b'-' && is_digits(0..4) {
        return match DateTime::parse_from_rfc3339(t) {
            // chrono reads year 0000 too; the contract's range is 1 to 9999,
            // as for every other form (found by the date property tests).
            Ok(dt) => ymd(dt.year(), dt.month(), dt.day())
                .map(|_| dt)
                .map_err(|m| format!("{m} ({t})")),
            Err(e) => {
                // A well-formed date part with an impossible day deserves the precise message.
                if is_digits(5..7) && is_digits(8..10) {
                    ymd(num(0..4) as i32, num(5..7), num(8..10))
                        .map_err(|m| format!("{m} ({t})"))?;
                }
                Err(format!(
                    "\"{t}\" is not valid RFC 3339 ({e}); write e.g. \"2022-08-22T10:30:00+07:00\", or leave out the time and offset"
                ))
            }
        };
    }
    Err(unknown_form(t))
}

fn unknown_form(t: &str) -> String {
    format!(
        "unrecognized date \"{t}\"; use YYYY-MM-DD, DD.MM.YYYY, DD.MM.YYYY HH:MM, RFC 3339 or a TOML date"
    )
}

fn ymd(year: i32, month: u32, day: u32) -> Result<NaiveDate, String> {
    if !(1..=9999).contains(&year) {
        return Err(format!("year {year} is out of range (1 to 9999)"));
    }
    if !(1..=12).contains(&month) {
        return Err(format!("no such month: {month}"));
    }
    NaiveDate::from_ymd_opt(year, month, day).ok_or_else(|| {
        let days = (28..=31)
            .rev()
            .find(|&d| NaiveDate::from_ymd_opt(year, month, d).is_some())
            .unwrap_or(28);
        format!("no such date: month {month:02} of {year:04} has only {days} days")
    })
}

/// Local wall-clock time in `zone` as a fixed-offset instant.
///
/// In a DST overlap the earlier instant wins (the time is read as still being
/// in the old offset). In a DST gap the time is read with the offset in force
/// before the gap, so 02:30 on a spring-forward night becomes 03:30 new time,
/// which is what `mktime` and most calendars do.
pub fn in_zone(naive: NaiveDateTime, zone: Tz) -> DateTime<FixedOffset> {
    let resolved = match zone.from_local_datetime(&naive) {
        LocalResult::Single(dt) => dt.fixed_offset(),
        LocalResult::Ambiguous(earlier, _) => earlier.fixed_offset(),
        LocalResult::None => {
            // A gap never lasts a day; the offset a day before is the one in force before it.
            let before = naive.checked_sub_signed(Duration::days(1)).unwrap_or(naive);
            let offset = zone.offset_from_utc_datetime(&before);
            let fixed = chrono::Offset::fix(&offset);
            let utc = naive - Duration::seconds(i64::from(fixed.local_minus_utc()));
            zone.from_utc_datetime(&utc).fixed_offset()
        }
    };
    whole_minute_offset(resolved)
}

/// The same wall-clock time with its offset rounded to whole minutes.
///
/// Before standard time (the 1890s in most places) tzdata gives local mean
/// time, e.g. Berlin +00:53:28. RFC 3339 and RFC 822 can only write whole
/// minutes, so the feeds would name an instant up to a minute away from the
/// one the model sorts by (found by fuzzing `front_matter_dates`). Keeping
/// the written local time and rounding the offset makes both agree.
fn whole_minute_offset(dt: DateTime<FixedOffset>) -> DateTime<FixedOffset> {
    let seconds = dt.offset().local_minus_utc();
    if seconds % 60 == 0 {
        return dt;
    }
    let rounded = (seconds + 30).div_euclid(60) * 60;
    FixedOffset::east_opt(rounded)
        .and_then(|o| o.from_local_datetime(&dt.naive_local()).single())
        .unwrap_or(dt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{Asia, Europe};

    fn check(input: &str, zone: Tz, expected: &str) {
        let got = parse_str(input, zone).map(|d| d.to_rfc3339());
        assert_eq!(got.as_deref(), Ok(expected), "input {input:?} in {zone}");
    }

    fn check_err(input: &str, expected: &str) {
        let got = parse_str(input, Asia::Novosibirsk).unwrap_err();
        assert!(
            got.contains(expected),
            "input {input:?}: {got:?} lacks {expected:?}"
        );
    }

    #[test]
    fn every_string_form() {
        let nsk = Asia::Novosibirsk;
        check("22.08.2022", nsk, "2022-08-22T00:00:00+07:00");
        check("22.08.2022 14:05", nsk, "2022-08-22T14:05:00+07:00");
        check("2022-08-22", nsk, "2022-08-22T00:00:00+07:00");
        check(
            "2022-08-22T10:30:00+03:00",
            nsk,
            "2022-08-22T10:30:00+03:00",
        );
        check("2022-08-22T10:30:00Z", nsk, "2022-08-22T10:30:00+00:00");
        check(" 22.08.2022 ", nsk, "2022-08-22T00:00:00+07:00");
    }

    #[test]
    fn zones_across_the_association() {
        check("22.08.2022 12:00", Asia::Omsk, "2022-08-22T12:00:00+06:00");
        check(
            "22.08.2022 12:00",
            Asia::Vladivostok,
            "2022-08-22T12:00:00+10:00",
        );
        check(
            "22.08.2022 12:00",
            Asia::Kamchatka,
            "2022-08-22T12:00:00+12:00",
        );
        // Novosibirsk moved from +06 to +07 in 2016; chrono-tz knows history.
        check("01.01.2016", Asia::Novosibirsk, "2016-01-01T00:00:00+06:00");
    }

    #[test]
    fn dst_zone_winter_summer_gap_and_overlap() {
        let ber = Europe::Berlin;
        check("15.01.2024 12:00", ber, "2024-01-15T12:00:00+01:00");
        check("15.07.2024 12:00", ber, "2024-07-15T12:00:00+02:00");
        // 02:30 does not exist on 2024-03-31 in Berlin: read in the old offset.
        check("31.03.2024 02:30", ber, "2024-03-31T03:30:00+02:00");
        // 02:30 happens twice on 2024-10-27: the earlier one wins.
        check("27.10.2024 02:30", ber, "2024-10-27T02:30:00+02:00");
    }

    #[test]
    fn local_mean_time_offsets_are_rounded_to_whole_minutes() {
        // tzdata: Berlin LMT is +00:53:28, New York LMT is -04:56:02.
        check(
            "01.01.1850 12:00",
            Europe::Berlin,
            "1850-01-01T12:00:00+00:53",
        );
        check(
            "0001-01-01",
            chrono_tz::America::New_York,
            "0001-01-01T00:00:00-04:56",
        );
        let dt = parse_str("01.01.1850", Europe::Berlin).unwrap();
        assert_eq!(dt.offset().local_minus_utc() % 60, 0);
        let back = DateTime::parse_from_rfc3339(&dt.to_rfc3339()).unwrap();
        assert_eq!(back, dt, "the written date names the same instant");
    }

    #[test]
    fn boundaries() {
        let nsk = Asia::Novosibirsk;
        check("29.02.2024", nsk, "2024-02-29T00:00:00+07:00");
        check("0001-01-01", chrono_tz::UTC, "0001-01-01T00:00:00+00:00");
        check(
            "31.12.9999 23:59",
            chrono_tz::UTC,
            "9999-12-31T23:59:00+00:00",
        );
    }

    #[test]
    fn impossible_and_malformed_dates_are_explained() {
        check_err(
            "31.02.2022",
            "no such date: month 02 of 2022 has only 28 days (31.02.2022)",
        );
        check_err("29.02.2023", "no such date");
        check_err("2022-02-30", "no such date");
        check_err("2022-02-30T10:00:00Z", "no such date");
        check_err("22.13.2022", "no such month: 13");
        check_err("22.08.2022 25:00", "no such time");
        check_err("22.08.2022 9:00", "unrecognized date");
        check_err("2022-08-22T10:30:00", "not valid RFC 3339");
        check_err("вчера", "unrecognized date");
        check_err("", "unrecognized date");
        check_err("00.00.0000", "out of range");
        check_err("0000-06-01T00:00:00Z", "year 0 is out of range (1 to 9999)");
    }

    #[test]
    fn toml_literals() {
        let nsk = Asia::Novosibirsk;
        let parse = |s: &str| -> Result<String, String> {
            let dt: toml::value::Datetime = s.parse().unwrap();
            resolve(&RawDate::Toml(dt), nsk).map(|d| d.to_rfc3339())
        };
        assert_eq!(parse("2022-08-22").unwrap(), "2022-08-22T00:00:00+07:00");
        assert_eq!(
            parse("2022-08-22T09:15:00").unwrap(),
            "2022-08-22T09:15:00+07:00"
        );
        assert_eq!(
            parse("2022-08-22T09:15:00+09:00").unwrap(),
            "2022-08-22T09:15:00+09:00"
        );
        assert!(parse("09:15:00").unwrap_err().contains("without a date"));
    }
}
