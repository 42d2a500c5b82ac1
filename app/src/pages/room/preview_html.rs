//! The room page's recent messages as the server writes them: straight into one string, the
//! markup `PreviewMessage` draws, without a component, an owner or a view per row. The browser
//! never hydrates these rows (nothing in them changes), so the server need not build them as
//! views either; drawing 50 of them that way was a third of a room page's render. A test holds
//! this to the components' own HTML, message for message.

use crate::{
    components::identicon,
    protocol::{ChatMessage, Source},
    text::{Piece, pieces},
};
use html_escape::{encode_double_quoted_attribute_to_string as attribute, encode_text_to_string as text};
use std::fmt::Write;

/// The rows of `recent`, each marked whether it continues the one before, in `slug`'s room.
pub fn rows(slug: &str, recent: &[(bool, ChatMessage)]) -> String {
    // A row is ~1.2 KB of markup around its text; one allocation for the whole list, as a rule.
    let said: usize = recent.iter().map(|(_, message)| message.text.len() + message.author.nickname.len()).sum();
    let mut out = String::with_capacity(recent.len() * 1_300 + said * 2);
    for (continued, message) in recent {
        row(&mut out, slug, message, *continued);
    }
    out
}

fn row(out: &mut String, slug: &str, message: &ChatMessage, continued: bool) {
    out.push_str(if continued { r#"<li class="flex gap-3 mt-0.5">"# } else { r#"<li class="flex gap-3 mt-3">"# });
    if continued {
        out.push_str(r#"<div class="min-w-0 flex-1 pl-11">"#);
    } else {
        let (hue, path) = identicon(slug, &message.author.nickname);
        // Writing into a String cannot fail.
        let _ = write!(
            out,
            r#"<svg aria-hidden="true" viewBox="-1 -1 7 7" class="size-8 shrink-0 rounded-lg"><rect x="-1" y="-1" width="7" height="7" fill="hsl({hue} 70% 90%)"></rect><path d="{path}" fill="hsl({hue} 65% 38%)"></path></svg><div class="min-w-0 flex-1">"#
        );
        out.push_str(r#"<p class="flex items-baseline gap-2"><bdi class="truncate text-sm font-semibold">"#);
        text(&message.author.nickname, out);
        out.push_str("</bdi>");
        if message.source == Source::Discord {
            out.push_str(
                r#"<span title="Written in the bridged Discord channel" class="shrink-0 rounded bg-indigo-100 px-1.5 text-[0.6875rem] font-medium text-indigo-800 dark:bg-indigo-500/15 dark:text-indigo-300">Discord</span>"#,
            );
        }
        let _ = write!(
            out,
            r#"<time data-at="{}" class="text-xs tabular-nums text-stone-600 dark:text-stone-400"></time></p>"#,
            message.at
        );
    }
    out.push_str(
        r#"<p dir="auto" class="max-h-[40rem] overflow-hidden whitespace-pre-wrap [overflow-wrap:anywhere] [unicode-bidi:plaintext]">"#,
    );
    for piece in pieces(&message.text) {
        match piece {
            Piece::Text(plain) => {
                text(plain, out);
            }
            Piece::Link(url) => {
                out.push_str(r#"<a href=""#);
                attribute(url, out);
                out.push_str(
                    r#"" rel="noopener noreferrer nofollow" target="_blank" class="text-orange-700 underline decoration-orange-700/40 underline-offset-2 hover:decoration-orange-700 dark:text-orange-300 dark:decoration-orange-300/40">"#,
                );
                text(url, out);
                out.push_str("</a>");
            }
        }
    }
    out.push_str("</p></div></li>");
}
