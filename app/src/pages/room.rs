//! `/r/<slug>`: the room's header, the join form (with a preview of a normal room's recent
//! messages), then the conversation.

mod chat;
mod conversation;
#[cfg(feature = "ssr")]
mod preview_html;

use super::{BUTTON, INPUT};
use crate::{
    api::RoomPreview,
    browser,
    components::{Avatar, BanNotice, DiscordBadge, LocalTime, MessageText, OneWayBadge, StatusLine, use_hydrated},
    protocol::{ChatMessage, Source},
    rules, text,
};
use chat::{Chat, Phase};
use leptos::{either::Either, ev::SubmitEvent, prelude::*};

/// Messages by one author within this long of each other share one header.
const GROUP_WITHIN_MS: i64 = 5 * 60 * 1000;

#[component]
pub fn RoomPage(
    preview: RoomPreview,
    /// The visitor's address is banned: the sentence saying until when and why.
    banned: Option<String>,
) -> impl IntoView {
    let chat = Chat::new(&preview);
    let bridged_to = preview.bridged_to.clone();
    let recent = StoredValue::new(preview.recent);
    on_cleanup(move || chat.disconnect());
    // A memo: the conversation is built once per join, not again whenever the phase is set.
    let joined = Memo::new(move |_| chat.phase.get() == Phase::Joined);
    // In a background tab the title and the icon count what arrived meanwhile.
    Effect::new(move |_| {
        let unread = chat.unread.get();
        let name = chat.room.read().name.clone();
        browser::set_title(&if unread > 0 {
            format!("({unread}) {name} · Burner")
        } else {
            format!("{name} · Burner")
        });
        browser::set_favicon_badge(unread > 0);
    });
    // (Inert on the server.)
    browser::on_visibility_change(move |hidden| {
        if !hidden {
            let _ = chat.unread.try_set(0);
        }
    });
    // The on-screen keyboard: the page is as tall as what is left visible, so the composer
    // stays above it (where the browser does not resize the page by itself).
    browser::on_viewport_resize(move |height| {
        let _ = chat.viewport_height.try_set(height);
    });
    // Whole pixels: formatting a float would bring float printing into the bundle.
    let height = move || chat.viewport_height.get().map(|h| format!("{}px", h.round() as i64));
    view! {
        <div class="flex h-dvh flex-col" style:height=height>
            <Header chat joined bridged_to />
            {move || {
                if joined.get() {
                    Either::Left(view! { <conversation::Conversation chat /> })
                } else {
                    // Taken, not copied: the messages are drawn once, by the server (the browser's
                    // page data has none), and a lobby drawn again later looks only at whether
                    // there were any, which is left in place.
                    let recent = recent.try_update_value(|recent| recent.as_mut().map(std::mem::take)).flatten();
                    Either::Right(view! { <Lobby chat recent banned=banned.clone() /> })
                }
            }}
        </div>
    }
}

#[component]
fn Header(chat: Chat, joined: Memo<bool>, bridged_to: Option<String>) -> impl IntoView {
    let room = chat.room;
    let status = chat.status.read_only();
    let people = move || {
        let room = room.read();
        format!("{} / {} {}", room.members, room.limit, if room.limit == 1 { "person" } else { "people" })
    };
    view! {
        <header class="z-20 border-b border-stone-200 bg-white/90 backdrop-blur dark:border-stone-800 dark:bg-stone-900/90">
            <div class="mx-auto flex max-w-6xl items-center gap-3 px-3 py-2 sm:px-4">
                <a
                    href="/"
                    class="rounded-lg px-2 py-1 text-xl text-stone-500 dark:text-stone-400 hover:bg-stone-100 hover:text-stone-900 dark:hover:bg-stone-800 dark:hover:text-stone-100"
                    aria-label="All rooms"
                    title="All rooms"
                >
                    "←"
                </a>
                <div class="min-w-0 flex-1">
                    <div class="flex min-w-0 items-center gap-2">
                        <h1 class="truncate text-base font-semibold sm:text-lg">
                            <bdi>{move || room.read().name.clone()}</bdi>
                        </h1>
                        {move || room.read().one_way.then(|| view! { <OneWayBadge /> })}
                    </div>
                    <div class="flex min-w-0 items-center gap-3">
                        <p class="shrink-0 text-xs tabular-nums text-stone-600 dark:text-stone-400">{people}</p>
                        {bridged_to.map(|channel| view! {
                            <p
                                title="What is said here is also posted in this Discord channel, and what is said there appears here"
                                class="min-w-0 truncate text-xs font-medium text-indigo-700 dark:text-indigo-300"
                            >
                                "Bridged to Discord #"<bdi>{channel}</bdi>
                            </p>
                        })}
                        <StatusLine status />
                    </div>
                </div>
                {move || joined.get().then(|| view! {
                    <button
                        type="button"
                        id="people-toggle"
                        on:click=move |_| chat.show_members.update(|shown| *shown = !*shown)
                        aria-controls="members"
                        aria-expanded=move || chat.show_members.get().to_string()
                        class="rounded-lg border border-stone-300 px-3 py-1.5 text-sm font-medium hover:bg-stone-100 md:hidden dark:border-stone-700 dark:hover:bg-stone-800"
                    >
                        "People"
                    </button>
                    <button
                        type="button"
                        on:click=move |_| chat.leave()
                        class="rounded-lg border border-stone-300 px-3 py-1.5 text-sm font-medium hover:bg-stone-100 dark:border-stone-700 dark:hover:bg-stone-800"
                    >
                        "Leave"
                    </button>
                })}
            </div>
        </header>
    }
}

/// Before joining: what the room is, the nickname form, and (normal rooms) recent messages.
#[component]
fn Lobby(chat: Chat, recent: Option<Vec<ChatMessage>>, banned: Option<String>) -> impl IntoView {
    Effect::new(move |_| {
        if chat.nickname.get_untracked().is_empty()
            && let Some(remembered) = browser::remembered_nickname()
        {
            chat.nickname.set(remembered);
        }
    });
    // Until the page is live a click would only reload it: the button waits for hydration.
    let hydrated = use_hydrated();
    let joining = move || chat.phase.get() == Phase::Joining;
    let ended = move || match chat.phase.get() {
        Phase::Ended(reason) => Some(reason),
        _ => None,
    };
    // Banned when the page was made, or since: the notice takes the form's place either way.
    let ban = Memo::new(move |_| banned.clone().or_else(|| ended().filter(|reason| text::is_ban_sentence(reason))));
    let one_way = chat.room.read_untracked().one_way;
    let slug = chat.room.read_untracked().slug.clone();
    let on_submit = move |event: SubmitEvent| {
        event.prevent_default();
        chat.join();
    };
    view! {
        <main class="flex-1 overflow-y-auto">
            <div class="mx-auto max-w-xl space-y-6 px-4 py-8">
                {move || ended().filter(|_| ban.get().is_none()).map(|reason| view! {
                    <p role="alert" class="rounded-xl border border-red-200 bg-red-50 p-4 text-sm text-red-800 dark:border-red-900 dark:bg-red-950 dark:text-red-200">
                        {reason}
                    </p>
                })}
                {one_way.then(|| view! {
                    <div class="rounded-xl border border-orange-200 bg-orange-50 p-4 text-sm text-orange-900 dark:border-orange-900/60 dark:bg-orange-950/40 dark:text-orange-200">
                        <p class="font-semibold">"This is a one-way room."</p>
                        <p class="mt-1">
                            "You see everyone else's messages as they arrive, but never your own: not after sending, not in the history, not after a reload. You get a quiet “sent” instead."
                        </p>
                    </div>
                })}
                {move || match ban.get() {
                    Some(sentence) => Either::Left(view! { <BanNotice sentence /> }),
                    None => Either::Right(view! {
                        <form
                            on:submit=on_submit
                            class="rounded-2xl border border-stone-200 bg-white p-5 shadow-sm dark:border-stone-800 dark:bg-stone-900"
                        >
                            <label for="nickname" class="block text-sm font-medium text-stone-800 dark:text-stone-200">"Nickname"</label>
                            <div class="mt-1 flex gap-2">
                                <input
                                    id="nickname"
                                    name="nickname"
                                    autocomplete="nickname"
                                    autocapitalize="off"
                                    spellcheck="false"
                                    required
                                    placeholder="Pick a name for this visit"
                                    bind:value=chat.nickname
                                    class=INPUT
                                />
                                <button type="submit" class=BUTTON disabled=move || !hydrated.get() || joining() aria-busy=move || joining().to_string()>
                                    "Join"
                                </button>
                            </div>
                            <p class="mt-2 text-xs text-stone-500 dark:text-stone-400">
                                {format!("Up to {} characters. No account: it lasts as long as this visit.", rules::NICKNAME_MAX_CHARS)}
                            </p>
                            <p role="alert" class="mt-2 text-sm font-medium text-red-700 empty:hidden dark:text-red-400">
                                {move || chat.join_error.get()}
                            </p>
                            <noscript>
                                <p class="mt-2 text-sm text-amber-800">"Chatting needs JavaScript: turn it on to join."</p>
                            </noscript>
                        </form>
                    }),
                }}
                {recent.map(|recent| view! {
                    <section aria-labelledby="recent-title">
                        <h2 id="recent-title" class="text-sm font-semibold text-stone-600 dark:text-stone-400">"Recent messages"</h2>
                        <RecentMessages chat slug recent />
                    </section>
                })}
            </div>
        </main>
    }
}

/// Whether `message` continues `previous` under one header: the same author, moments later.
/// The one rule for the preview and the conversation.
fn continues(previous: &ChatMessage, message: &ChatMessage) -> bool {
    previous.author == message.author && message.at - previous.at < GROUP_WITHIN_MS
}

/// Each message, and whether it continues the one before.
fn grouped(messages: Vec<ChatMessage>) -> Vec<(bool, ChatMessage)> {
    let continued: Vec<bool> =
        std::iter::once(false).chain(messages.windows(2).map(|pair| continues(&pair[0], &pair[1]))).collect();
    continued.into_iter().zip(messages).collect()
}

/// The room's recent messages before joining. Nothing in them ever changes, so the browser keeps
/// the server's HTML as it is instead of hydrating each row (50 rows of components were half of
/// the room page's blocking time), and the page's data does not carry them again
/// (`RoomPreview::recent`). Drawn in the browser later (back in the lobby after leaving), the
/// rows are the conversation's latest messages, built as usual.
#[component]
fn RecentMessages(chat: Chat, slug: String, recent: Vec<ChatMessage>) -> impl IntoView {
    if use_hydrated().get_untracked() {
        let latest = chat.latest_messages();
        let rows = grouped(latest)
            .into_iter()
            .map(|(continued, message)| view! { <PreviewMessage slug=slug.clone() message continued /> })
            .collect_view();
        Either::Left(view! { <ol class="mt-3">{rows}</ol> })
    } else {
        // The server writes the rows out as they are (`preview_html`: the same markup, without
        // building a view per row); hydrating leaves what it wrote alone (this string is not
        // even looked at then).
        #[cfg(feature = "ssr")]
        let html = preview_html::rows(&slug, &grouped(recent));
        #[cfg(not(feature = "ssr"))]
        let html = {
            let _ = recent;
            String::new()
        };
        Either::Right(view! { <ol class="mt-3" inner_html=html></ol> })
    }
}

#[component]
fn PreviewMessage(slug: String, message: ChatMessage, continued: bool) -> impl IntoView {
    view! {
        <li class="flex gap-3" class=("mt-3", !continued) class=("mt-0.5", continued)>
            {(!continued).then(|| view! { <Avatar room=slug nickname=message.author.nickname.clone() /> })}
            <div class="min-w-0 flex-1" class=("pl-11", continued)>
                {(!continued).then(|| view! {
                    <p class="flex items-baseline gap-2">
                        <bdi class="truncate text-sm font-semibold">{message.author.nickname}</bdi>
                        {(message.source == Source::Discord).then(|| view! { <DiscordBadge /> })}
                        <LocalTime at=message.at />
                    </p>
                })}
                <MessageText text=message.text />
            </div>
        </li>
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;
    use crate::protocol::Member;

    fn message(id: u64, at: i64, nickname: &str, text: &str) -> ChatMessage {
        ChatMessage {
            seq: at as u64,
            at,
            author: Member { id, nickname: nickname.to_owned() },
            text: text.to_owned(),
            mentions: Vec::new(),
            source: Source::Burner,
            edited: false,
        }
    }

    /// The rows as the components draw them, less the markers hydration would look for (these
    /// rows are never hydrated).
    fn drawn(slug: &str, recent: &[ChatMessage]) -> String {
        let owner = Owner::new();
        owner.set();
        let rows = grouped(recent.to_vec())
            .into_iter()
            .map(|(continued, message)| view! { <PreviewMessage slug=slug.to_owned() message continued /> })
            .collect_view();
        tidy_classes(&leptos::tachys::view::RenderHtml::to_html(rows).replace("<!>", ""))
    }

    /// `html` with each class list's names one space apart (the components leave two where a
    /// toggled class is off).
    fn tidy_classes(html: &str) -> String {
        let mut out = String::with_capacity(html.len());
        let mut rest = html;
        while let Some(at) = rest.find(r#"class=""#) {
            let (before, list) = rest.split_at(at + r#"class=""#.len());
            let end = list.find('"').unwrap_or(list.len());
            out.push_str(before);
            out.push_str(&list[..end].split_whitespace().collect::<Vec<_>>().join(" "));
            rest = &list[end..];
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn the_written_rows_are_the_rows_the_components_draw() {
        let mut from_discord = message(9, 400_000, "Ana <discord>", "bridged & \"quoted\"");
        from_discord.source = Source::Discord;
        let recent = vec![
            message(1, 1_000, "alice", "hi <b>&\"'</b> see https://example.com/a?b=1&c=2\"x ok"),
            // Continues alice's: no picture, no header.
            message(1, 2_000, "alice", "again, https://x.test/<y> and (http://z.test/p)."),
            message(2, 3_000, "李小龍 🔥", "  spaced\nlines\ttabbed  "),
            message(2, 3_000 + GROUP_WITHIN_MS, "李小龍 🔥", "long after: a new header"),
            from_discord,
            message(3, 500_000, "bob", ""),
            message(3, 500_001, "bob", "http://"),
        ];
        let written = preview_html::rows("night-owls-k3x9q", &grouped(recent.clone()));
        let drawn = drawn("night-owls-k3x9q", &recent);
        let apart =
            written.bytes().zip(drawn.bytes()).position(|(a, b)| a != b).unwrap_or(written.len().min(drawn.len()));
        let near =
            |html: &str| html.get(apart.saturating_sub(60)..(apart + 60).min(html.len())).unwrap_or(html).to_owned();
        assert!(written == drawn, "apart at byte {apart}:\n written: {}\n drawn:   {}", near(&written), near(&drawn));
        assert!(written.contains("Discord</span>") && written.contains("pl-11"), "{written}");
        assert_eq!(preview_html::rows("lobby", &[]), "");
    }
}
