//! The joined room: message log, member list and composer.

use super::{
    chat::{Chat, Entry, EntryKind, Pending},
    continues,
};
use crate::components::LinkStatus;
use crate::{
    browser,
    components::{Avatar, DiscordBadge, LocalTime, MessageText},
    protocol::{ChatMessage, Member, Source},
    rules,
};
use leptos::{
    either::EitherOf4,
    ev::{KeyboardEvent, SubmitEvent},
    html,
    prelude::*,
};

#[component]
pub fn Conversation(chat: Chat) -> impl IntoView {
    view! {
        <main class="flex min-h-0 flex-1 flex-col">
            <div class="relative flex min-h-0 flex-1">
                <Log chat />
                <Members chat show=chat.show_members />
            </div>
            <Composer chat />
        </main>
    }
}

/// How a log entry is drawn, given the entries before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// A message with its own header (avatar, name, time); `divider`: the date changed.
    Header {
        divider: bool,
    },
    /// A message that continues the one above it: same author, moments later.
    Continued,
    Other,
}

/// Each entry with its shape. A shape only changes when the entry above goes (a deletion),
/// and then the entry gets a new id (see `Chat::on_message`): the log is keyed by id alone.
fn shaped(entries: &[Entry]) -> Vec<(Entry, Shape)> {
    let today = browser::day_of(browser::now_ms() as i64);
    // The message just above (none after a notice, a receipt or a draft), and the last day seen.
    let mut above: Option<&ChatMessage> = None;
    let mut last_day = None;
    let mut rows = Vec::with_capacity(entries.len());
    for entry in entries {
        let shape = match &entry.kind {
            EntryKind::Message(message) => {
                let day = browser::day_of(message.at);
                let divider = last_day.map_or(day != today, |last| last != day);
                last_day = Some(day);
                let continued = !divider && above.is_some_and(|above| continues(above, message));
                above = Some(message);
                if continued { Shape::Continued } else { Shape::Header { divider } }
            }
            _ => {
                above = None;
                Shape::Other
            }
        };
        rows.push((entry.clone(), shape));
    }
    rows
}

#[component]
fn Log(chat: Chat) -> impl IntoView {
    let log = NodeRef::<html::Section>::new();
    // Follow new messages unless the reader scrolled up to read older ones; then a button
    // offers to jump down instead of yanking the view.
    let following = StoredValue::new(true);
    let unseen = RwSignal::new(false);
    let seen_len = StoredValue::new(0usize);
    let to_newest = move || {
        if let Some(el) = log.get_untracked() {
            el.set_scroll_top(el.scroll_height());
        }
        following.set_value(true);
        unseen.set(false);
    };
    let on_scroll = move |_| {
        if let Some(el) = log.get_untracked() {
            let at_bottom = el.scroll_height() - el.scroll_top() - el.client_height() < 48;
            following.set_value(at_bottom);
            if at_bottom {
                unseen.set(false);
            }
        }
    };
    Effect::new(move |_| {
        let len = chat.entries.read().len();
        let grew = len > seen_len.get_value();
        seen_len.set_value(len);
        if following.get_value() {
            to_newest();
        } else if grew {
            unseen.set(true);
        }
    });
    // The on-screen keyboard opened or closed: the newest message stays in view.
    Effect::new(move |_| {
        chat.viewport_height.track();
        if following.get_value() {
            to_newest();
        }
    });
    let slug = chat.room.read_untracked().slug.clone();
    let one_way = chat.room.read_untracked().one_way;
    let online = Memo::new(move |_| chat.status.get() == LinkStatus::Online);
    view! {
        // Announced through the live region below instead: messages, not every join and leave.
        <section
            node_ref=log
            on:scroll=on_scroll
            role="log"
            aria-live="off"
            aria-label="Messages"
            tabindex="0"
            class="min-w-0 flex-1 overflow-y-auto overscroll-contain px-3 py-4 sm:px-6"
        >
            <ol class="mx-auto flex max-w-3xl flex-col">
                <li class="py-10 text-center text-sm text-stone-600 dark:text-stone-400" class:hidden=move || !chat.entries.read().is_empty()>
                        {if one_way {
                            "Nobody has said anything yet. What others write appears here; what you write, you never see again."
                        } else {
                            "Nobody has said anything yet. Say hello!"
                        }}
                </li>
                <For
                    each=move || shaped(&chat.entries.read())
                    key=|(entry, _): &(Entry, Shape)| entry.id
                    children=move |(entry, shape)| {
                        let slug = slug.clone();
                        match entry.kind {
                            EntryKind::Message(message) => {
                                let you = chat.you.get_untracked();
                                let mine = you.as_ref().is_some_and(|you| you.id == message.author.id);
                                let mentioned = you.is_some_and(|you| message.mentions.contains(&you.nickname));
                                EitherOf4::A(view! { <MessageItem chat slug message mine mentioned shape /> })
                            }
                            EntryKind::Sent { at, .. } => EitherOf4::B(view! { <SentItem at /> }),
                            EntryKind::Notice(text) => EitherOf4::C(view! {
                                <li class="mt-3 text-center text-xs text-stone-600 dark:text-stone-400"><bdi>{text}</bdi></li>
                            }),
                            EntryKind::Pending(pending) => EitherOf4::D(view! { <PendingItem pending one_way online /> }),
                        }
                    }
                />
            </ol>
        </section>
        <p class="sr-only" aria-live="polite">{move || chat.announced.get()}</p>
        <button
            type="button"
            on:click=move |_| to_newest()
            class="absolute bottom-3 left-1/2 z-10 -translate-x-1/2 rounded-full bg-orange-700 px-4 py-2 text-sm font-semibold text-white shadow-lg hover:bg-orange-800"
            class:hidden=move || !unseen.get()
        >
            "New messages " <span aria-hidden="true">"↓"</span>
        </button>
    }
}

#[component]
fn MessageItem(
    chat: Chat,
    slug: String,
    message: ChatMessage,
    mine: bool,
    mentioned: bool,
    shape: Shape,
) -> impl IntoView {
    let ChatMessage { seq, at, author, text, source, edited, .. } = message;
    let reported = RwSignal::new(false);
    let report = move |_| {
        if !reported.get_untracked() {
            chat.report(seq);
            reported.set(true);
        }
    };
    let report_button = (!mine).then(|| view! {
        <button
            type="button"
            on:click=report
            disabled=move || reported.get()
            title="Report this message to the moderators"
            class="ml-auto rounded px-1.5 text-xs text-stone-600 opacity-0 group-hover:opacity-100 group-focus-within:opacity-100 hover:bg-stone-100 hover:text-red-700 focus-visible:opacity-100 disabled:cursor-default disabled:opacity-100 dark:text-stone-400 dark:hover:bg-stone-800 dark:hover:text-red-400 [@media(hover:none)]:opacity-100"
        >
            {move || if reported.get() { "Reported" } else { "Report" }}
        </button>
    });
    let highlight = if mentioned {
        " -mx-2 rounded-lg bg-amber-50 px-2 ring-1 ring-amber-300 dark:bg-amber-950/50 dark:ring-amber-700"
    } else {
        ""
    };
    let divider = matches!(shape, Shape::Header { divider: true }).then(|| browser::day_label(at));
    let no_divider = divider.is_none();
    let continued = shape == Shape::Continued;
    // One tree for every shape, the differences in classes: each variant of a view is code
    // in the bundle.
    let (row, header) = if continued { ("mt-0.5", "hidden") } else { ("mt-3 pt-0.5", "flex items-baseline gap-2") };
    let side = if continued { "w-8 shrink-0 whitespace-nowrap pt-0.5 text-right text-[0.6875rem]" } else { "hidden" };
    view! {
        // `hidden` alone when there is no divider: with `flex` beside it, one display rule would win at random.
        <li class=if no_divider { "hidden" } else { "mt-4 flex items-center gap-3 text-xs font-medium text-stone-600 dark:text-stone-400" }>
            <span aria-hidden="true" class="h-px flex-1 bg-stone-200 dark:bg-stone-800"></span>
            {divider}
            <span aria-hidden="true" class="h-px flex-1 bg-stone-200 dark:bg-stone-800"></span>
        </li>
        <li class=format!("group flex gap-3 {row}{highlight}") data-continued=continued.then_some("")>
            <span class=side>
                <LocalTime at class="!text-[0.6875rem] opacity-0 group-hover:opacity-100 group-focus-within:opacity-100" />
            </span>
            <Avatar room=slug nickname=author.nickname.clone() hidden=continued />
            <div class="min-w-0 flex-1">
                <p class=header>
                    <bdi class="truncate text-sm font-semibold">{author.nickname}</bdi>
                    {(source == Source::Discord).then(|| view! { <DiscordBadge /> })}
                    <span class="text-xs text-stone-600 dark:text-stone-400">{if mine { "(you)" } else { "" }}</span>
                    <LocalTime at />
                </p>
                <div class="flex items-start gap-2">
                    <div class="min-w-0 flex-1">
                        <span class="sr-only">{if mentioned { "Mentions you: " } else { "" }}</span>
                        <MessageText text />
                        {edited.then(|| view! { <span class="text-xs text-stone-600 dark:text-stone-400">" (edited)"</span> })}
                    </div>
                    {report_button}
                </div>
            </div>
        </li>
    }
}

/// The content-free receipt an author gets in a one-way room.
#[component]
fn SentItem(at: i64) -> impl IntoView {
    view! {
        <li class="mt-3 flex justify-end">
            <p class="inline-flex items-center gap-2 rounded-full bg-emerald-50 px-3 py-1 text-xs font-medium text-emerald-800 dark:bg-emerald-950 dark:text-emerald-200">
                <span aria-hidden="true">"✓"</span>
                <span>"Sent"</span>
                <LocalTime at />
            </p>
        </li>
    }
}

#[component]
fn PendingItem(pending: Pending, one_way: bool, online: Memo<bool>) -> impl IntoView {
    view! {
        <li class="mt-3 flex justify-end">
            <div class="max-w-[80%] rounded-xl border border-dashed border-stone-400 px-3 py-2 text-sm text-stone-600 dark:border-stone-700 dark:text-stone-400">
                {(!one_way).then(|| view! { <MessageText text=pending.text /> })}
                <p class="text-xs">{move || if online.get() { "Sending…" } else { "Waiting for the connection…" }}</p>
            </div>
        </li>
    }
}

#[component]
fn Members(chat: Chat, show: RwSignal<bool>) -> impl IntoView {
    let slug = chat.room.read_untracked().slug.clone();
    let you = move || chat.you.read().as_ref().map(|m| m.id);
    // Over the log on narrow screens: Escape puts it away again.
    let on_keydown = move |event: KeyboardEvent| {
        if event.key() == "Escape" && show.get_untracked() {
            show.set(false);
            browser::focus("people-toggle");
        }
    };
    // Members the room has beyond those listed.
    let more_members = move || (chat.room.read().members as usize).saturating_sub(chat.members.read().len());
    view! {
        <section
            aria-label="Members"
            id="members"
            on:keydown=on_keydown
            class=move || {
                let base = "w-60 shrink-0 overflow-y-auto border-l border-stone-200 bg-white p-4 dark:border-stone-800 dark:bg-stone-900";
                if show.get() { format!("{base} absolute inset-y-0 right-0 z-20 shadow-xl md:static md:shadow-none") } else { format!("{base} hidden md:block") }
            }
        >
            <h2 id="members-title" tabindex="-1" class="text-sm font-semibold text-stone-600 outline-none dark:text-stone-400">
                "Members " <span class="tabular-nums">{move || chat.room.read().members}</span>
            </h2>
            <ul class="mt-3 space-y-2">
                // Keyed by id and name: a restarted server hands out ids again from 1.
                <For
                    each=move || chat.members.get()
                    key=|m| (m.id, m.nickname.clone())
                    children=move |member: Member| {
                        let id = member.id;
                        view! {
                            <li class="flex min-w-0 items-center gap-2">
                                <Avatar room=slug.clone() nickname=member.nickname.clone() />
                                <bdi class="truncate text-sm">{member.nickname}</bdi>
                                {move || (you() == Some(id)).then(|| view! { <span class="text-xs text-stone-600 dark:text-stone-400">"(you)"</span> })}
                            </li>
                        }
                    }
                />
            </ul>
            // A big room lists its newest members only (`protocol::MEMBERS_LISTED`); the rest come
            // a page at a time. (One element, hidden when everyone is listed: less code in the
            // bundle than a view that comes and goes.)
            <button
                id="more-members"
                type="button"
                hidden=move || more_members() == 0
                on:click=move |_| chat.more_members()
                class="mt-2 rounded text-sm font-medium text-orange-700 underline-offset-2 hover:underline focus-visible:outline-2 focus-visible:outline-orange-600 dark:text-orange-300"
            >
                {move || format!("Show {} more members", more_members())}
            </button>
            <NotifyToggle chat />
        </section>
    }
}

/// Opt-in desktop notifications for mentions: the browser is asked only when this is clicked.
#[component]
fn NotifyToggle(chat: Chat) -> impl IntoView {
    fn blocked(chat: Chat) {
        chat.composer_error.set(Some("Notifications are blocked for this site in your browser's settings.".into()));
    }
    let toggle = move |_| {
        if chat.notify.get_untracked() {
            chat.notify.set(false);
            return;
        }
        match browser::notifications_allowed() {
            Some(true) => chat.notify.set(true),
            Some(false) => blocked(chat),
            None => browser::ask_for_notifications(move |granted| {
                if chat.notify.try_set(granted).is_none() && !granted {
                    blocked(chat);
                }
            }),
        }
    };
    view! {
        <button
            type="button"
            on:click=toggle
            aria-pressed=move || chat.notify.get().to_string()
            title="A desktop notification when someone mentions you while this tab is in the background"
            class="mt-6 w-full rounded-lg border border-stone-300 px-3 py-1.5 text-left text-sm font-medium hover:bg-stone-100 aria-pressed:border-orange-600 aria-pressed:bg-orange-50 aria-pressed:text-orange-900 dark:border-stone-700 dark:hover:bg-stone-800 dark:aria-pressed:bg-orange-950 dark:aria-pressed:text-orange-100"
        >
            "Notify me when mentioned"
        </button>
    }
}

/// "Alice is typing…", "Alice and Bob are typing…", "Several people are typing…".
fn typing_sentence(names: &[String]) -> Option<String> {
    match names {
        [] => None,
        [one] => Some(format!("{one} is typing…")),
        [one, two] => Some(format!("{one} and {two} are typing…")),
        _ => Some("Several people are typing…".to_owned()),
    }
}

/// A nickname completion in progress: what was typed, where, and which candidate is shown,
/// so a second Tab moves on to the next one.
#[derive(Clone)]
struct Completion {
    start: usize,
    prefix: String,
    inserted: String,
    index: usize,
}

/// The word before `cursor` (a byte offset) and where it starts.
fn word_before(text: &str, cursor: usize) -> (usize, &str) {
    let start =
        text[..cursor].rfind(char::is_whitespace).map_or(0, |i| i + text[i..].chars().next().map_or(1, char::len_utf8));
    (start, &text[start..cursor])
}

/// People (not you) whose nickname starts with `prefix`, case aside: the member list in its
/// order, then — a big room lists only its newest members — whoever wrote what the log shows,
/// latest first. (Nicknames are unique in a room.)
fn candidates(chat: &Chat, prefix: &str) -> Vec<String> {
    let prefix = browser::lower(prefix);
    let you = chat.you.with_untracked(|you| you.as_ref().map(|you| you.id));
    let mut names: Vec<String> = Vec::new();
    let mut offer = |person: &Member| {
        if Some(person.id) != you
            && !names.contains(&person.nickname)
            && browser::lower(&person.nickname).starts_with(&prefix)
        {
            names.push(person.nickname.clone());
        }
    };
    chat.members.with_untracked(|members| members.iter().for_each(&mut offer));
    chat.entries.with_untracked(|entries| {
        for entry in entries.iter().rev() {
            if let EntryKind::Message(message) = &entry.kind
                && message.source == Source::Burner
            {
                offer(&message.author);
            }
        }
    });
    names
}

/// UTF-16 offsets (what the DOM counts in) to byte offsets and back.
fn byte_offset(text: &str, utf16: u32) -> usize {
    let mut units = 0;
    for (i, c) in text.char_indices() {
        if units >= utf16 as usize {
            return i;
        }
        units += c.len_utf16();
    }
    text.len()
}

fn utf16_offset(text: &str, bytes: usize) -> u32 {
    text[..bytes].encode_utf16().count() as u32
}

#[component]
fn Composer(chat: Chat) -> impl IntoView {
    let one_way = chat.room.read_untracked().one_way;
    let textarea = NodeRef::<html::Textarea>::new();
    let completion = StoredValue::new(None::<Completion>);
    let on_submit = move |event: SubmitEvent| {
        event.prevent_default();
        chat.submit();
    };
    // Tab completes the nickname being typed (again: the next one); with nothing to complete
    // it moves the focus on, as everywhere.
    let complete = move |event: &KeyboardEvent| {
        let Some(el) = textarea.get_untracked() else { return };
        let text = el.value();
        let cursor = byte_offset(&text, el.selection_start().ok().flatten().unwrap_or(u32::MAX));
        let again = completion.get_value().filter(|c| text.get(c.start..cursor) == Some(c.inserted.as_str()));
        let (start, prefix, index) = match again {
            Some(c) => (c.start, c.prefix, c.index + 1),
            None => {
                let (start, word) = word_before(&text, cursor);
                let prefix = word.strip_prefix('@').unwrap_or(word);
                if prefix.is_empty() {
                    return;
                }
                (start, prefix.to_owned(), 0)
            }
        };
        let found = candidates(&chat, &prefix);
        if found.is_empty() {
            return;
        }
        event.prevent_default();
        let inserted = format!("@{} ", found[index % found.len()]);
        let updated = format!("{}{inserted}{}", &text[..start], &text[cursor..]);
        let at = utf16_offset(&updated, start + inserted.len());
        el.set_value(&updated);
        let _ = el.set_selection_range(at, at);
        chat.draft.set(updated);
        completion.set_value(Some(Completion { start, prefix, inserted, index }));
    };
    // Enter sends; Shift+Enter is a new line; nothing happens mid-composition (IME).
    let on_keydown = move |event: KeyboardEvent| {
        let plain = !event.shift_key() && !event.ctrl_key() && !event.alt_key() && !event.meta_key();
        match event.key().as_str() {
            "Enter" if !event.shift_key() && !event.is_composing() => {
                event.prevent_default();
                chat.submit();
            }
            "Tab" if plain && !event.is_composing() => complete(&event),
            _ => {}
        }
    };
    let on_input = move |event: leptos::ev::Event| chat.typed(!event_target_value(&event).trim().is_empty());
    let count = move || {
        let chars = chat.draft.read().chars().count();
        (chars > rules::MESSAGE_MAX_CHARS - 200).then(|| format!("{chars} / {}", rules::MESSAGE_MAX_CHARS))
    };
    let (tick, set_tick) = signal(0u32);
    #[cfg(feature = "hydrate")]
    {
        let handle = set_interval_with_handle(
            move || set_tick.update(|t| *t = t.wrapping_add(1)),
            std::time::Duration::from_millis(250),
        );
        on_cleanup(move || {
            if let Ok(handle) = handle {
                handle.clear();
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = set_tick;
    let wait = move || {
        tick.track();
        let at = chat.retry_at.get()?;
        let seconds = ((at - browser::now_ms()) / 1000.0).ceil() as i64;
        (seconds >= 1).then(|| format!("You can send again in {seconds}s."))
    };
    // When the rate limit has passed, so has its message; typists fall silent.
    Effect::new(move |_| {
        tick.track();
        chat.expire_typing(browser::now_ms());
        if chat.retry_at.get_untracked().is_some_and(|at| at <= browser::now_ms()) {
            chat.retry_at.set(None);
            chat.composer_error.set(None);
        }
    });
    let error = move || chat.composer_error.get();
    let typing =
        move || chat.typing.with(|t| typing_sentence(&t.iter().map(|t| t.nickname.clone()).collect::<Vec<_>>()));
    view! {
        <form on:submit=on_submit class="border-t border-stone-200 bg-white px-3 pb-[max(0.75rem,env(safe-area-inset-bottom))] pt-1 dark:border-stone-800 dark:bg-stone-900">
            <p class="mx-auto min-h-5 max-w-3xl truncate py-0.5 text-xs text-stone-600 italic dark:text-stone-400" data-typing="">
                {typing}
            </p>
            <div class="mx-auto flex max-w-3xl items-end gap-2">
                <label for="message" class="sr-only">"Message"</label>
                <textarea
                    id="message"
                    name="message"
                    rows="1"
                    autocomplete="off"
                    placeholder=if one_way { "Write something you won't see again…" } else { "Write a message…" }
                    node_ref=textarea
                    on:keydown=on_keydown
                    on:input=on_input
                    bind:value=chat.draft
                    class="block max-h-40 min-h-11 w-full resize-none rounded-lg border border-stone-300 bg-white px-3 py-2 text-base [field-sizing:content] placeholder:text-stone-400 focus:border-orange-500 focus:outline-none focus:ring-2 focus:ring-orange-500/30 dark:border-stone-700 dark:bg-stone-950"
                ></textarea>
                <button
                    type="submit"
                    class="h-11 shrink-0 rounded-lg bg-orange-700 px-4 font-semibold text-white shadow-sm hover:bg-orange-800 focus-visible:outline focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-orange-600"
                >
                    "Send"
                </button>
            </div>
            <div class="mx-auto mt-1 flex max-w-3xl justify-between gap-3 text-xs">
                <p role="alert" class="font-medium text-red-700 dark:text-red-400">{error} " " {wait}</p>
                <p class="tabular-nums text-stone-500 dark:text-stone-400">{count}</p>
            </div>
        </form>
    }
}
