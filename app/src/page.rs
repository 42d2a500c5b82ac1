//! Which page a request shows, with everything it needs to render.
//!
//! The server decides the page from the path, renders it, and embeds the same `Page` as JSON in
//! the document; the browser reads it back and hydrates exactly that page. No client-side router
//! and no second fetch: what the server rendered is what the browser brings to life.

use crate::{api::RoomPreview, json, protocol::RoomSummary};
use serde::{Deserialize, Serialize};

/// What the console page carries. The visitors' bundle never shows the console, so it skips that
/// data unread instead of carrying the code to read it.
#[cfg(any(feature = "ssr", feature = "console"))]
pub type ConsoleData = crate::protocol::ModSnapshot;
#[cfg(not(any(feature = "ssr", feature = "console")))]
pub type ConsoleData = Unread;

/// Data this bundle has no use for: skipped when read, written as nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unread;

impl<'de> Deserialize<'de> for Unread {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer).map(|_| Unread)
    }
}

impl Serialize for Unread {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_unit()
    }
}

/// Compact JSON whose strings carry `<`, `>` and `&` as `\\u` escapes (the only places they can
/// be), so that it can sit inside a `<script>` element.
struct InScript;

impl serde_json::ser::Formatter for InScript {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut from = 0;
        for (at, byte) in fragment.bytes().enumerate() {
            let escape: &[u8] = match byte {
                b'<' => b"\\u003c",
                b'>' => b"\\u003e",
                b'&' => b"\\u0026",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[from..at])?;
            writer.write_all(escape)?;
            from = at + 1;
        }
        writer.write_all(&fragment.as_bytes()[from..])
    }
}

/// The id of the `<script type="application/json">` holding the page.
pub const PAGE_DATA_ID: &str = "burner-page";

/// Externally tagged (`{"room": {...}}`): the server writes it with serde, the browser reads it
/// in one pass ([`Page::from_json`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Page {
    /// `/`: the directory and the creation form, with the refusal of a form posted without
    /// JavaScript, if it came back with one. `banned`: the visitor's address is banned, and
    /// this is the sentence saying until when and why.
    Home { rooms: Vec<RoomSummary>, form_error: Option<String>, banned: Option<String> },
    /// `/r/<slug>` for a room that exists.
    Room { preview: RoomPreview, banned: Option<String> },
    /// Anything else; `room` when the path named a room that does not (or no longer) exist.
    NotFound { room: bool },
    /// `/mod` without a moderator session: the sign-in form, with why the last try failed.
    SignIn { error: Option<String> },
    /// `/mod` for a signed-in moderator.
    Console { snapshot: ConsoleData },
}

impl Page {
    pub fn title(&self) -> String {
        match self {
            Page::Home { .. } => "Burner".to_owned(),
            Page::Room { preview, .. } => format!("{} · Burner", preview.room.name),
            Page::NotFound { room: true } => "No such room · Burner".to_owned(),
            Page::NotFound { room: false } => "Not found · Burner".to_owned(),
            Page::SignIn { .. } => "Moderator sign-in · Burner".to_owned(),
            Page::Console { .. } => "Moderator console · Burner".to_owned(),
        }
    }

    /// JSON that can sit inside a `<script>` element: `<`, `>` and `&` are written as JSON
    /// escapes, so no user text can close the element or start markup.
    /// Written in one pass: the escapes go in as the strings are written.
    pub fn to_embedded_json(&self) -> String {
        let mut json = Vec::with_capacity(4_096);
        let written = self.serialize(&mut serde_json::Serializer::with_formatter(&mut json, InScript));
        match (written, String::from_utf8(json)) {
            (Ok(()), Ok(json)) => json,
            _ => r#"{"not_found":{"room":false}}"#.to_owned(),
        }
    }

    /// The page the server embedded in this document.
    #[cfg(feature = "hydrate")]
    pub fn embedded() -> Option<Page> {
        let text = web_sys::window()?.document()?.get_element_by_id(PAGE_DATA_ID)?.text_content()?;
        Page::from_json(&text).ok()
    }

    /// Reads a page back from its JSON, with the browser's reader ([`crate::json`]).
    pub fn from_json(text: &str) -> Result<Page, json::Error> {
        let mut page = None;
        let mut reader = json::Reader::new(text);
        reader.object(&mut |reader, name| {
            if page.is_some() {
                return Err(reader.error("one page"));
            }
            page = Some(match name {
                "home" => {
                    let Home { rooms, form_error, banned } = json::Read::read(reader)?;
                    Page::Home { rooms, form_error, banned }
                }
                "room" => {
                    let Room { preview, banned } = json::Read::read(reader)?;
                    Page::Room { preview, banned }
                }
                "not_found" => Page::NotFound { room: <NotFound as json::Read>::read(reader)?.room },
                "sign_in" => Page::SignIn { error: <SignIn as json::Read>::read(reader)?.error },
                "console" => Page::Console { snapshot: <Console as json::Read>::read(reader)?.snapshot },
                _ => return Err(reader.error("a known page")),
            });
            Ok(())
        })?;
        reader.end()?;
        page.ok_or_else(|| reader.error("a page"))
    }
}

struct Home {
    rooms: Vec<RoomSummary>,
    form_error: Option<String>,
    banned: Option<String>,
}
json::read_fields!(Home { rooms; form_error, banned });

struct Room {
    preview: RoomPreview,
    banned: Option<String>,
}
json::read_fields!(Room { preview; banned });

struct NotFound {
    room: bool,
}
json::read_fields!(NotFound { room });

struct SignIn {
    error: Option<String>,
}
json::read_fields!(SignIn { ; error });

struct Console {
    snapshot: ConsoleData,
}
json::read_fields!(Console { snapshot });

impl json::Read for Unread {
    fn read(reader: &mut json::Reader<'_>) -> Result<Self, json::Error> {
        reader.skip().map(|()| Unread)
    }
}

/// One page of every kind, with something in each place a page shows data: markup in names and
/// texts, 50 messages (Discord authors, edited ones, mentions), a bridge, a one-way room, a ban,
/// an error. For the tests that must hold of every page: the browser reads back what the server
/// embeds (here), and the server's document is leptos_axum's (`server::pages`).
#[cfg(any(test, feature = "ssr"))]
pub fn every_kind() -> Vec<Page> {
    use crate::protocol::{ChatMessage, Member, Source};
    let room = RoomSummary { slug: "lobby".into(), name: "Lobby <&>".into(), members: 3, limit: 1000, one_way: false };
    let one_way = RoomSummary { slug: "quiet".into(), name: "Quiet".into(), members: 1, limit: 5, one_way: true };
    let message = |seq: u64| ChatMessage {
        seq,
        at: 1_763_750_000_000 + i64::try_from(seq).unwrap_or_default(),
        author: Member { id: 2, nickname: "ann \"<b>\"".into() },
        text: format!("{seq}: said once, in the HTML <script>alert(1)</script> & @bob"),
        mentions: vec!["bob".into()],
        source: if seq.is_multiple_of(2) { Source::Discord } else { Source::Burner },
        edited: seq.is_multiple_of(3),
    };
    vec![
        Page::Home { rooms: vec![room.clone(), one_way.clone()], form_error: Some("taken".into()), banned: None },
        Page::Home { rooms: vec![], form_error: None, banned: Some("until Friday".into()) },
        Page::Room {
            preview: RoomPreview {
                room,
                recent: Some((1..=50).map(message).collect()),
                bridged_to: Some("#general".into()),
            },
            banned: None,
        },
        Page::Room {
            preview: RoomPreview { room: one_way, recent: None, bridged_to: None },
            banned: Some("no".into()),
        },
        Page::NotFound { room: true },
        Page::NotFound { room: false },
        Page::SignIn { error: None },
        Page::SignIn { error: Some("wrong token".into()) },
        Page::Console { snapshot: ConsoleData::default() },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_json_cannot_close_its_script_element() {
        let hostile = "</script><script>alert(1)</script> & <!--";
        let page = Page::Home {
            rooms: vec![RoomSummary { slug: "x".into(), name: hostile.into(), members: 0, limit: 2, one_way: false }],
            form_error: None,
            banned: None,
        };
        let json = page.to_embedded_json();
        assert!(!json.contains('<') && !json.contains('>') && !json.contains('&'), "{json}");
        let plain = serde_json::to_string(&page).expect("JSON");
        assert_eq!(json, plain.replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026"));
        assert_eq!(serde_json::from_str::<Page>(&json).expect("still JSON"), page);
        assert_eq!(Page::from_json(&json).expect("the browser reads it"), page);
    }

    #[test]
    fn the_browser_reads_back_every_page_the_server_embeds() {
        let pages = every_kind();
        for page in pages {
            let json = page.to_embedded_json();
            // A room's recent messages are in the page's HTML: its data says only that there are
            // some.
            assert!(!json.contains("said once"), "{json}");
            let mut embedded = page;
            if let Page::Room { preview, .. } = &mut embedded {
                preview.recent = preview.recent.take().map(|_| Vec::new());
            }
            assert_eq!(Page::from_json(&json), Ok(embedded));
        }
        assert!(Page::from_json(r#"{"not_found":{"room":true},"sign_in":{}}"#).is_err(), "one page only");
        assert!(Page::from_json(r#"{"lost":{}}"#).is_err());
    }
}
