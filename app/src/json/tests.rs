use super::*;

#[derive(Debug, PartialEq)]
struct Item {
    id: u64,
    name: String,
    tags: Vec<String>,
    note: Option<String>,
}
read_fields!(Item { id, name; tags, note });

fn item(text: &str) -> Result<Item, Error> {
    from_str(text)
}

#[test]
fn reads_fields_in_any_order_skips_unknown_ones_and_defaults_the_optional() {
    let read = item(r#" { "name" : "a", "extra": {"deep": [1, 2.5e-3, -0.5, true, null, "x", {}]}, "id": 7 } "#);
    assert_eq!(read, Ok(Item { id: 7, name: "a".into(), tags: vec![], note: None }));
    let read = item(r#"{"id":1,"name":"b","tags":["x","y"],"note":null}"#);
    assert_eq!(read, Ok(Item { id: 1, name: "b".into(), tags: vec!["x".into(), "y".into()], note: None }));
    assert_eq!(item(r#"{"id":1,"name":"b","note":"n"}"#).map(|i| i.note), Ok(Some("n".into())));
}

#[test]
fn a_missing_field_a_wrong_type_or_trailing_text_is_an_error_saying_where() {
    assert_eq!(item(r#"{"name":"a"}"#), Err(Error { at: 12, expected: "field `id`" }));
    assert_eq!(item(r#"{"id":"7","name":"a"}"#), Err(Error { at: 6, expected: "a whole number" }));
    assert_eq!(item(r#"{"id":7,"name":"a"} x"#), Err(Error { at: 20, expected: "the end of the text" }));
    for bad in [
        "",
        "[]",
        "{",
        r#"{"id":7,"name":"a",}"#,
        r#"{"id":7 "name":"a"}"#,
        r#"{"id":7,"name":"a""#,
        r#"{"id":7,"name":"a","extra":tru}"#,
        r#"{"id":7,"name":"a","tags":["x",]}"#,
        r#"{"id":7,"name":"a","tags":"x"}"#,
        r#"{id:7,"name":"a"}"#,
    ] {
        assert!(item(bad).is_err(), "{bad:?} should be refused");
    }
}

#[test]
fn skipped_values_are_checked_too() {
    for number in ["0", "-0", "0.5", "-12.5e+7", "1E-3", "1e10", "123"] {
        assert!(item(&format!(r#"{{"id":1,"name":"a","x":{number}}}"#)).is_ok(), "{number} is a number");
    }
    for bad in ["-", "1.2.3", "1.", ".5", "01", "1e", "1e+", "--1", "+1", "1e1.5", "tru", "nul", "\"\\q\""] {
        assert!(item(&format!(r#"{{"id":1,"name":"a","x":{bad}}}"#)).is_err(), "{bad} is not a value");
    }
}

#[test]
fn a_field_given_twice_is_refused() {
    assert_eq!(item(r#"{"id":1,"name":"a","id":2}"#).map_err(|e| e.expected), Err("each field once"));
    assert_eq!(item(r#"{"id":1,"name":"a","note":null,"note":"n"}"#).map_err(|e| e.expected), Err("each field once"));
}

#[test]
fn strings_unescape_every_json_escape() {
    let read = from_str::<String>(r#""q\" b\\ s\/ \b\f\n\r\t é \u00e9 \u2028 \ud83d\ude00""#);
    assert_eq!(read.as_deref(), Ok("q\" b\\ s/ \u{8}\u{c}\n\r\t é é \u{2028} 😀"));
    assert_eq!(from_str::<String>(r#""""#).as_deref(), Ok(""));
    for bad in [
        r#""\x""#,
        r#""\u12""#,
        r#""\u+123""#,
        r#""\ud83d""#,
        r#""\ud83d\u0041""#,
        r#""\ude00""#,
        "\"tab\there\"",
        r#""open"#,
    ] {
        assert!(from_str::<String>(bad).is_err(), "{bad:?} should be refused");
    }
}

#[test]
fn integers_must_be_whole_and_in_range() {
    assert_eq!(from_str::<u64>("18446744073709551615"), Ok(u64::MAX));
    assert_eq!(from_str::<i64>("-9223372036854775808"), Ok(i64::MIN));
    assert_eq!(from_str::<i64>("9223372036854775807"), Ok(i64::MAX));
    assert_eq!(from_str::<u32>("4294967295"), Ok(u32::MAX));
    assert!(from_str::<i64>("-0").is_err(), "a float to serde_json");
    assert_eq!(from_str::<i64>("0"), Ok(0));
    for bad in ["18446744073709551616", "-1", "1.0", "1e3", "01", "", "-", "+1"] {
        assert!(from_str::<u64>(bad).is_err(), "{bad:?} should be refused as a u64");
    }
    assert!(from_str::<u32>("4294967296").is_err());
    assert!(from_str::<i64>("9223372036854775808").is_err());
    assert!(from_str::<i64>("-9223372036854775809").is_err());
}

#[test]
fn skipping_stops_at_a_nesting_no_message_has() {
    let deep = format!(r#"{{"id":1,"name":"a","extra":{}{}}}"#, "[".repeat(200), "]".repeat(200));
    assert_eq!(item(&deep).map_err(|e| e.expected), Err("less nesting"));
    let fine = format!(r#"{{"id":1,"name":"a","extra":{}{}}}"#, "[".repeat(100), "]".repeat(100));
    assert!(item(&fine).is_ok());
}

#[test]
fn raw_gives_back_a_values_text() {
    let mut reader = Reader::new(r#" {"a": [1, {"b": "]"}], "c": 2} "#);
    let mut raw = None;
    reader
        .object(&mut |reader, name| {
            if name == "a" {
                raw = Some(reader.raw()?);
            } else {
                reader.skip()?;
            }
            Ok(())
        })
        .expect("an object");
    assert_eq!(raw, Some(r#"[1, {"b": "]"}]"#));
}

#[test]
fn the_writer_escapes_what_json_must() {
    let mut writer = Writer::tagged("t");
    writer.string("s", "\"\\\n\r\t\u{8}\u{c}\u{1}\u{1f}é/").number("n", u64::MAX).object("o", |o| {
        o.string("k", "v");
    });
    assert_eq!(
        writer.finish(),
        r#"{"type":"t","s":"\"\\\n\r\t\b\f\u0001\u001fé/","n":18446744073709551615,"o":{"k":"v"}}"#
    );
}
