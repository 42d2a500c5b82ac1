//! Request bodies of the message routes: parsing them into twilight-model types and Discord's
//! validation (lengths, the empty message, `allowed_mentions` exclusivity). A rejection is the
//! 400 body Discord would send.

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use twilight_model::channel::message::{AllowedMentions, Embed, MentionType};

use crate::model;

const CONTENT_MAX: usize = 2000;
const EMBEDS_MAX: usize = 10;
const DESCRIPTION_MAX: usize = 4096;
const TITLE_MAX: usize = 256;
const EMBED_TOTAL_MAX: usize = 6000;
const NONCE_MAX: usize = 25;

/// `POST channels/{id}/messages`, validated.
#[derive(Debug)]
pub(crate) struct Create {
    pub content: String,
    pub embeds: Vec<Embed>,
    /// The nonce as a string (Discord accepts an integer or a string).
    pub nonce: Option<String>,
    pub enforce_nonce: bool,
}

/// `PATCH channels/{id}/messages/{mid}`, validated; `None` leaves a field as it is.
#[derive(Debug)]
pub(crate) struct Edit {
    pub content: Option<String>,
    pub embeds: Option<Vec<Embed>>,
}

#[derive(Deserialize)]
struct Raw {
    /// `Some(None)` is an explicit `null` (clears the field on an edit), `None` is absent.
    #[serde(default, deserialize_with = "present")]
    content: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    embeds: Option<Option<Vec<Value>>>,
    #[serde(default)]
    allowed_mentions: Option<AllowedMentions>,
    #[serde(default)]
    nonce: Option<Value>,
    #[serde(default)]
    enforce_nonce: Option<bool>,
}

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A 400 body.
pub(crate) type Rejection = Value;

pub(crate) fn create(raw: &[u8]) -> Result<Create, Rejection> {
    let raw = parse(raw)?;
    let content = raw.content.flatten().unwrap_or_default();
    let embeds = embeds(raw.embeds.flatten().unwrap_or_default())?;
    check_content(&content)?;
    check_allowed_mentions(raw.allowed_mentions.as_ref())?;
    let nonce = match raw.nonce {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() <= NONCE_MAX => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => {
            return Err(model::invalid_form_body(&["nonce"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."));
        }
    };
    if content.is_empty() && embeds.is_empty() {
        return Err(empty_message());
    }
    Ok(Create { content, embeds, nonce, enforce_nonce: raw.enforce_nonce.unwrap_or(false) })
}

pub(crate) fn edit(raw: &[u8]) -> Result<Edit, Rejection> {
    let raw = parse(raw)?;
    let content = raw.content.map(Option::unwrap_or_default);
    if let Some(content) = &content {
        check_content(content)?;
    }
    let embeds = raw.embeds.map(|e| embeds(e.unwrap_or_default())).transpose()?;
    check_allowed_mentions(raw.allowed_mentions.as_ref())?;
    Ok(Edit { content, embeds })
}

/// Discord's answer to a message with neither content nor embeds.
pub(crate) fn empty_message() -> Rejection {
    model::api_error(50006, "Cannot send an empty message")
}

fn parse(raw: &[u8]) -> Result<Raw, Rejection> {
    // An absent body is an empty form, which then fails as an empty message.
    let value: Value = if raw.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(raw).map_err(|_| model::api_error(50109, "The request body contains invalid JSON."))?
    };
    serde_json::from_value(value).map_err(|error| {
        tracing::debug!(%error, "message body does not fit the form");
        model::invalid_form_body(&[], "MODEL_TYPE_CONVERT", "Could not interpret the request body.")
    })
}

fn embeds(values: Vec<Value>) -> Result<Vec<Embed>, Rejection> {
    if values.len() > EMBEDS_MAX {
        return Err(model::invalid_form_body(&["embeds"], "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length."));
    }
    let mut embeds = Vec::with_capacity(values.len());
    let mut total = 0;
    for (index, mut value) in values.into_iter().enumerate() {
        let at = index.to_string();
        // Discord fills in `type` (rich) when a client leaves it out; twilight's `Embed` needs it.
        if let Value::Object(map) = &mut value {
            map.entry("type").or_insert_with(|| Value::String("rich".to_owned()));
        }
        let embed: Embed = serde_json::from_value(value).map_err(|_| {
            model::invalid_form_body(&["embeds", &at], "MODEL_TYPE_CONVERT", "Could not interpret the embed.")
        })?;
        let description = embed.description.as_deref().map_or(0, |d| d.chars().count());
        if description > DESCRIPTION_MAX {
            let text = "Must be 4096 or fewer in length.";
            return Err(model::invalid_form_body(&["embeds", &at, "description"], "BASE_TYPE_MAX_LENGTH", text));
        }
        let title = embed.title.as_deref().map_or(0, |t| t.chars().count());
        if title > TITLE_MAX {
            let text = "Must be 256 or fewer in length.";
            return Err(model::invalid_form_body(&["embeds", &at, "title"], "BASE_TYPE_MAX_LENGTH", text));
        }
        total += description
            + title
            + embed.fields.iter().map(|f| f.name.chars().count() + f.value.chars().count()).sum::<usize>()
            + embed.footer.as_ref().map_or(0, |f| f.text.chars().count())
            + embed.author.as_ref().map_or(0, |a| a.name.chars().count());
        embeds.push(embed);
    }
    if total > EMBED_TOTAL_MAX {
        let text = "Embed size exceeds maximum size of 6000";
        return Err(model::invalid_form_body(&["embeds"], "MAX_EMBED_SIZE_EXCEEDED", text));
    }
    Ok(embeds)
}

fn check_content(content: &str) -> Result<(), Rejection> {
    if content.chars().count() > CONTENT_MAX {
        return Err(model::invalid_form_body(&["content"], "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length."));
    }
    Ok(())
}

fn check_allowed_mentions(allowed: Option<&AllowedMentions>) -> Result<(), Rejection> {
    let Some(allowed) = allowed else { return Ok(()) };
    let exclusive = (allowed.parse.contains(&MentionType::Users) && !allowed.users.is_empty())
        || (allowed.parse.contains(&MentionType::Roles) && !allowed.roles.is_empty());
    if exclusive {
        let text = "parse and users/roles are mutually exclusive.";
        return Err(model::invalid_form_body(&["allowed_mentions"], "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE", text));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(rejection: &Rejection) -> u64 {
        rejection["code"].as_u64().unwrap_or_default()
    }

    #[test]
    fn content_and_embeds_within_limits_pass() {
        let body = br#"{"content":"hi","embeds":[{"description":"d"}],"allowed_mentions":{"parse":[]},"nonce":"b-1","enforce_nonce":true}"#;
        let create = create(body).expect("valid");
        assert_eq!(create.content, "hi");
        assert_eq!(create.embeds[0].kind, "rich");
        assert_eq!(create.nonce.as_deref(), Some("b-1"));
        assert!(create.enforce_nonce);
    }

    #[test]
    fn limits_are_counted_in_characters() {
        let at_limit = serde_json::json!({ "content": "é".repeat(2000) }).to_string();
        assert!(create(at_limit.as_bytes()).is_ok());
        let over = serde_json::json!({ "content": "a".repeat(2001) }).to_string();
        let rejection = create(over.as_bytes()).expect_err("too long");
        assert_eq!(code(&rejection), 50035);
        assert!(rejection["errors"]["content"]["_errors"].is_array());
        let long_embed = serde_json::json!({ "embeds": [{ "description": "a".repeat(4097) }] }).to_string();
        let rejection = create(long_embed.as_bytes()).expect_err("too long");
        assert!(rejection["errors"]["embeds"]["0"]["description"]["_errors"].is_array());
    }

    #[test]
    fn an_empty_message_and_bad_json_are_refused_with_their_codes() {
        assert_eq!(code(&create(b"").expect_err("empty")), 50006);
        assert_eq!(code(&create(br#"{"content":""}"#).expect_err("empty")), 50006);
        assert_eq!(code(&create(b"{").expect_err("bad json")), 50109);
        assert_eq!(code(&create(br#"{"content":5}"#).expect_err("wrong type")), 50035);
        assert_eq!(
            code(&create(br#"{"content":"x","nonce":"12345678901234567890123456"}"#).expect_err("nonce")),
            50035
        );
    }

    #[test]
    fn an_edit_tells_absent_from_null() {
        let edit = edit(br#"{"content":null}"#).expect("valid");
        assert_eq!(edit.content.as_deref(), Some(""));
        assert!(edit.embeds.is_none());
        let edit = super::edit(br#"{"embeds":[]}"#).expect("valid");
        assert!(edit.content.is_none());
        assert_eq!(edit.embeds.map(|e| e.len()), Some(0));
    }

    #[test]
    fn a_numeric_nonce_is_kept_as_its_digits() {
        assert_eq!(create(br#"{"content":"x","nonce":123}"#).expect("valid").nonce.as_deref(), Some("123"));
    }
}
