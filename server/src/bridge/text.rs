//! Text across the bridge, both ways. Toward Discord: words that stay words (no mention pings,
//! no markdown that changes meaning), within Discord's limits. Toward Burner: a Discord message
//! as plain text a Burner reader can trust (mentions by name, attachments and stickers as links
//! and placeholders, never loaded), within Burner's own message limit.

use twilight_model::channel::Message;

/// Discord's limit on an embed's description, in characters.
pub const EMBED_DESCRIPTION_MAX: usize = 4096;
/// Characters of a Discord author's name looked at (Burner's nickname limit is 24).
const NAME_MAX: usize = app::rules::NICKNAME_MAX_CHARS;

/// Zero-width space: breaks a mention or a markdown sign without changing what one reads.
const BREAK: char = '\u{200B}';

/// `text` as Discord shows it literally: `@everyone` / `@here` and `<@…>`, `<@&…>`, `<#…>`,
/// `</…>`, `<:…:…>`, `<t:…>` lose their meaning, and markdown signs are escaped (headings, quotes
/// and lists only where they would start a line). `allowed_mentions` empty already stops pings;
/// this also stops the pills and formatting a reader would otherwise see.
pub fn neutralise(text: &str) -> String {
    // Clipped before escaping, so a cut never falls between an escape and what it escapes (a
    // Burner message is at most 2 000 characters: escaped, it fits 4 096 anyway).
    let text = clip_chars(text, EMBED_DESCRIPTION_MAX / 2);
    let mut out = String::with_capacity(text.len() + 16);
    for (index, line) in text.split('\n').enumerate() {
        if index > 0 {
            out.push('\n');
        }
        let indent = line.len() - line.trim_start().len();
        let (lead, rest) = line.split_at(indent);
        out.push_str(lead);
        if rest.starts_with(['#', '>', '-', '+']) || starts_numbered_list(rest) {
            out.push('\\');
        }
        escape_inline(rest, &mut out);
    }
    out
}

fn starts_numbered_list(line: &str) -> bool {
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && line[digits..].starts_with(". ")
}

fn escape_inline(text: &str, out: &mut String) {
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' | '*' | '_' | '~' | '|' | '`' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            '@' => {
                out.push('@');
                let rest: String = chars.clone().take(8).collect();
                if rest.starts_with("everyone") || rest.starts_with("here") {
                    out.push(BREAK);
                }
            }
            '<' => {
                out.push('<');
                if chars.peek().is_some_and(|next| matches!(next, '@' | '#' | '/' | ':' | 'a' | 't' | 'i')) {
                    out.push(BREAK);
                }
            }
            _ => out.push(c),
        }
    }
}

/// At most `max` characters of `text`, ending with an ellipsis when cut.
pub fn clip_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((at, _)) if text[at..].chars().nth(1).is_some() => format!("{}…", &text[..at]),
        _ => text.to_owned(),
    }
}

/// The name a Discord author is shown under in Burner: the server nickname, else the display
/// name, else the user name, as a Burner nickname would be written (NFKC, no invisible or
/// direction-changing characters, at most 24 characters; reserved words allowed, the
/// "Discord" mark says who it is). A name that cannot be made one: "Discord user".
pub fn author_name(message: &Message) -> String {
    let name = message
        .member
        .as_ref()
        .and_then(|member| member.nick.as_deref())
        .or(message.author.global_name.as_deref())
        .unwrap_or(&message.author.name);
    let clean: String = name.chars().filter(|c| !c.is_control()).take(NAME_MAX).collect();
    app::rules::bridge_nickname(clean.trim())
        .map_or_else(|_| "Discord user".to_owned(), |name| name.display().to_owned())
}

/// A Discord message as Burner text: mentions as `@name` / `#channel`, custom emoji as
/// `:name:`, then one line per attachment (its name and link) and per sticker, clipped to
/// `max_chars` with a marker saying how much more there is in Discord. `None`: nothing to show
/// (no content, no attachment: the MESSAGE_CONTENT intent is missing, or a system message).
pub fn from_discord(message: &Message, max_chars: usize) -> Option<String> {
    let mut text = readable(&message.content, message);
    for attachment in &message.attachments {
        push_line(&mut text, &format!("[attachment: {}] {}", attachment.filename, attachment.url));
    }
    for sticker in &message.sticker_items {
        push_line(&mut text, &format!("[sticker: {}]", sticker.name));
    }
    let text = text.trim().to_owned();
    if text.is_empty() {
        return None;
    }
    let total = text.chars().count();
    if total <= max_chars {
        return Some(text);
    }
    let marker = |more: usize| format!(" [… {more} more characters in Discord]");
    let keep = max_chars.saturating_sub(marker(total).chars().count());
    let kept: String = text.chars().take(keep).collect();
    Some(format!("{}{}", kept.trim_end(), marker(total - keep)))
}

fn push_line(text: &mut String, line: &str) {
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(line);
}

/// Discord's inline tokens as words: `<@id>` / `<@!id>` → `@name` (from the message's own
/// mention list), `<@&id>` → `@role`, `<#id>` → `#channel`, `<:name:id>` / `<a:name:id>` →
/// `:name:`, `<t:…>` → the raw time. Anything else is left as written.
fn readable(content: &str, message: &Message) -> String {
    let mut out = String::with_capacity(content.len());
    let mut rest = content;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let Some(end) = tail.find('>') else {
            out.push_str(tail);
            return out;
        };
        let token = &tail[1..end];
        match token_text(token, message) {
            Some(text) => out.push_str(&text),
            None => out.push_str(&tail[..=end]),
        }
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    out
}

fn token_text(token: &str, message: &Message) -> Option<String> {
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(id) = token.strip_prefix("@&") {
        return numeric(id).then(|| "@role".to_owned());
    }
    if let Some(id) = token.strip_prefix('@') {
        let id = id.strip_prefix('!').unwrap_or(id);
        if !numeric(id) {
            return None;
        }
        let name = message
            .mentions
            .iter()
            .find(|m| m.id.get().to_string() == id)
            .map_or_else(|| "someone".to_owned(), |m| m.name.clone());
        return Some(format!("@{name}"));
    }
    if let Some(id) = token.strip_prefix('#') {
        return numeric(id).then(|| "#channel".to_owned());
    }
    let emoji = token.strip_prefix("a:").or_else(|| token.strip_prefix(':'));
    if let Some((name, id)) = emoji.and_then(|e| e.split_once(':')) {
        return (numeric(id) && !name.is_empty()).then(|| format!(":{name}:"));
    }
    if let Some(time) = token.strip_prefix("t:") {
        return Some(time.split(':').next().unwrap_or(time).to_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_and_markdown_lose_their_meaning() {
        let text = neutralise("@everyone @here <@123> <@&1> <#5> [click](https://x.y) **bold** `code`");
        assert!(!text.contains("@everyone") && !text.contains("@here"), "{text}");
        assert!(!text.contains("<@1") && !text.contains("<@&") && !text.contains("<#"), "{text}");
        assert!(text.contains("\\[click\\](https://x.y)"), "{text}");
        assert!(text.contains("\\*\\*bold\\*\\*") && text.contains("\\`code\\`"), "{text}");
        // What a reader sees is the same words.
        assert_eq!(
            text.replace(['\\', BREAK], ""),
            "@everyone @here <@123> <@&1> <#5> [click](https://x.y) **bold** `code`"
        );
    }

    #[test]
    fn line_starts_are_escaped_only_at_line_starts() {
        assert_eq!(
            neutralise("# title\n  > quote\n- item\n1. one\na - b # c"),
            "\\# title\n  \\> quote\n\\- item\n\\1. one\na - b # c"
        );
    }

    #[test]
    fn plain_words_pass_unchanged() {
        assert_eq!(neutralise("hello, world: 3 < 4 and a@b.c"), "hello, world: 3 < 4 and a@b.c");
    }

    fn discord_message(content: &str, extra: serde_json::Value) -> Message {
        let mut json = serde_json::json!({
            "attachments": [], "author": {"id": "42", "username": "dana", "discriminator": "0", "avatar": null},
            "channel_id": "600", "content": content, "edited_timestamp": null, "embeds": [], "id": "7",
            "mention_everyone": false, "mention_roles": [], "mentions": [], "pinned": false,
            "timestamp": "2026-12-02T16:30:00.000000+00:00", "tts": false, "type": 0,
        });
        if let (Some(json), Some(extra)) = (json.as_object_mut(), extra.as_object()) {
            json.extend(extra.clone());
        }
        serde_json::from_value(json).expect("a Discord message")
    }

    #[test]
    fn discord_tokens_become_words_and_files_become_links() {
        let message = discord_message(
            "hi <@42> and <@!9>, see <#600> <:blob:123> <a:party:456> <@&77> <t:1764000000:R> <b>",
            serde_json::json!({
                "mentions": [{"id": "42", "username": "dana", "discriminator": "0", "avatar": null, "public_flags": 0}],
                "sticker_items": [{"id": "5", "name": "wave", "format_type": 1}],
                "attachments": [{"id": "8", "filename": "a.png", "size": 3, "url": "https://cdn.example/a.png", "proxy_url": "https://m.example/a.png"}],
            }),
        );
        assert_eq!(
            from_discord(&message, 2_000).as_deref(),
            Some(
                "hi @dana and @someone, see #channel :blob: :party: @role 1764000000 <b>\n[attachment: a.png] https://cdn.example/a.png\n[sticker: wave]"
            )
        );
        assert_eq!(from_discord(&discord_message("", serde_json::json!({})), 2_000), None, "nothing to show");
    }

    #[test]
    fn a_long_discord_message_is_clipped_with_a_marker() {
        let clipped = from_discord(&discord_message(&"é".repeat(2_500), serde_json::json!({})), 2_000).expect("text");
        assert!(clipped.chars().count() <= 2_000);
        assert!(clipped.ends_with("é [… 536 more characters in Discord]"), "{}", &clipped[clipped.len() - 50..]);
    }

    #[test]
    fn the_author_is_named_as_the_server_names_them() {
        let plain = discord_message("x", serde_json::json!({}));
        assert_eq!(author_name(&plain), "dana");
        let named = discord_message(
            "x",
            serde_json::json!({"member": {"nick": "Dana\u{0007} B", "roles": [], "joined_at": null, "deaf": false, "mute": false, "flags": 0}}),
        );
        assert_eq!(author_name(&named), "Dana B");
    }

    #[test]
    fn clipping_counts_characters() {
        assert_eq!(clip_chars("héllo", 10), "héllo");
        assert_eq!(clip_chars("héllo wörld", 5), "héll…");
        assert_eq!(clip_chars("abcde", 5), "abcde");
    }
}
