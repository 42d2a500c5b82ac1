//! The joined room: message log, member list and composer.

use super::chat::{Chat, Entry, EntryKind, Pending};
use crate::components::LinkStatus;
use crate::{
    browser,
    components::{Avatar, LocalTime, MessageText},
    protocol::{ChatMessage, Member},
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
        <div class="relative flex min-h-0 flex-1">
            <Log chat />
            <Members chat show=chat.show_members />
        </div>
        <Composer chat />
    }
}

#[component]
fn Log(chat: Chat) -> impl IntoView {
    let log = NodeRef::<html::Section>::new();
    // Follow new messages unless the reader scrolled up to read older ones.
    let following = StoredValue::new(true);
    let on_scroll = move |_| {
        if let Some(el) = log.get_untracked() {
            following.set_value(el.scroll_height() - el.scroll_top() - el.client_height() < 48);
        }
    };
    Effect::new(move |_| {
        chat.entries.track();
        if following.get_value()
            && let Some(el) = log.get_untracked()
        {
            el.set_scroll_top(el.scroll_height());
        }
    });
    let slug = chat.room.read_untracked().slug.clone();
    let one_way = chat.room.read_untracked().one_way;
    let you = move || chat.you.read().as_ref().map(|m| m.id);
    let online = Memo::new(move |_| chat.status.get() == LinkStatus::Online);
    view! {
        <section
            node_ref=log
            on:scroll=on_scroll
            role="log"
            aria-label="Messages"
            class="min-w-0 flex-1 overflow-y-auto overscroll-contain px-3 py-4 sm:px-6"
        >
            <ol class="mx-auto flex max-w-3xl flex-col gap-3">
                <li class="py-10 text-center text-sm text-stone-500 dark:text-stone-400" class:hidden=move || !chat.entries.read().is_empty()>
                        {if one_way {
                            "Nobody has said anything yet. What others write appears here; what you write, you never see again."
                        } else {
                            "Nobody has said anything yet. Say hello!"
                        }}
                </li>
                <For
                    each=move || chat.entries.get()
                    key=|entry: &Entry| entry.id
                    children=move |entry| {
                        let slug = slug.clone();
                        match entry.kind {
                            EntryKind::Message(message) => {
                                let mine = you() == Some(message.author.id);
                                EitherOf4::A(view! { <MessageItem chat slug message mine /> })
                            }
                            EntryKind::Sent { at, .. } => EitherOf4::B(view! { <SentItem at /> }),
                            EntryKind::Notice(text) => EitherOf4::C(view! {
                                <li class="text-center text-xs text-stone-500 dark:text-stone-400"><bdi>{text}</bdi></li>
                            }),
                            EntryKind::Pending(pending) => EitherOf4::D(view! { <PendingItem pending one_way online /> }),
                        }
                    }
                />
            </ol>
        </section>
    }
}

#[component]
fn MessageItem(chat: Chat, slug: String, message: ChatMessage, mine: bool) -> impl IntoView {
    let ChatMessage { seq, at, author, text } = message;
    let reported = RwSignal::new(false);
    let report = move |_| {
        if !reported.get_untracked() {
            chat.report(seq);
            reported.set(true);
        }
    };
    view! {
        <li class="group flex gap-3">
            <Avatar room=slug nickname=author.nickname.clone() />
            <div class="min-w-0 flex-1">
                <p class="flex items-baseline gap-2">
                    <bdi class="truncate text-sm font-semibold">{author.nickname}</bdi>
                    {mine.then(|| view! { <span class="text-xs text-stone-500">"(you)"</span> })}
                    <LocalTime at />
                    {(!mine).then(|| view! {
                        <button
                            type="button"
                            on:click=report
                            disabled=move || reported.get()
                            title="Report this message to the moderators"
                            class="ml-auto rounded px-1.5 text-xs text-stone-400 hover:bg-stone-100 hover:text-red-700 focus-visible:text-red-700 disabled:cursor-default disabled:hover:bg-transparent disabled:hover:text-stone-400 dark:hover:bg-stone-800 dark:hover:text-red-400"
                        >
                            {move || if reported.get() { "Reported" } else { "Report" }}
                        </button>
                    })}
                </p>
                <MessageText text />
            </div>
        </li>
    }
}

/// The content-free receipt an author gets in a one-way room.
#[component]
fn SentItem(at: i64) -> impl IntoView {
    view! {
        <li class="flex justify-end">
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
        <li class="flex justify-end">
            <div class="max-w-[80%] rounded-xl border border-dashed border-stone-300 px-3 py-2 text-sm text-stone-500 dark:border-stone-700 dark:text-stone-400">
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
    view! {
        <section
            aria-label="Members"
            class=move || {
                let base = "w-60 shrink-0 overflow-y-auto border-l border-stone-200 bg-white p-4 dark:border-stone-800 dark:bg-stone-900";
                if show.get() { format!("{base} absolute inset-y-0 right-0 z-10 shadow-xl md:static md:shadow-none") } else { format!("{base} hidden md:block") }
            }
        >
            <h2 class="text-sm font-semibold text-stone-600 dark:text-stone-400">
                "Members " <span class="tabular-nums">{move || chat.members.read().len()}</span>
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
                                {move || (you() == Some(id)).then(|| view! { <span class="text-xs text-stone-500">"(you)"</span> })}
                            </li>
                        }
                    }
                />
            </ul>
        </section>
    }
}

#[component]
fn Composer(chat: Chat) -> impl IntoView {
    let one_way = chat.room.read_untracked().one_way;
    let on_submit = move |event: SubmitEvent| {
        event.prevent_default();
        chat.submit();
    };
    // Enter sends; Shift+Enter is a new line; nothing happens mid-composition (IME).
    let on_keydown = move |event: KeyboardEvent| {
        if event.key() == "Enter" && !event.shift_key() && !event.is_composing() {
            event.prevent_default();
            chat.submit();
        }
    };
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
    // When the rate limit has passed, so has its message.
    Effect::new(move |_| {
        tick.track();
        if chat.retry_at.get_untracked().is_some_and(|at| at <= browser::now_ms()) {
            chat.retry_at.set(None);
            chat.composer_error.set(None);
        }
    });
    let error = move || chat.composer_error.get();
    view! {
        <form on:submit=on_submit class="border-t border-stone-200 bg-white px-3 pb-[max(0.75rem,env(safe-area-inset-bottom))] pt-3 dark:border-stone-800 dark:bg-stone-900">
            <div class="mx-auto flex max-w-3xl items-end gap-2">
                <label for="message" class="sr-only">"Message"</label>
                <textarea
                    id="message"
                    name="message"
                    rows="1"
                    autocomplete="off"
                    placeholder=if one_way { "Write something you won't see again…" } else { "Write a message…" }
                    on:keydown=on_keydown
                    bind:value=chat.draft
                    class="block max-h-40 min-h-11 w-full resize-none rounded-lg border border-stone-300 bg-white px-3 py-2 text-base [field-sizing:content] placeholder:text-stone-400 focus:border-orange-500 focus:outline-none focus:ring-2 focus:ring-orange-500/30 dark:border-stone-700 dark:bg-stone-950"
                ></textarea>
                <button
                    type="submit"
                    class="h-11 shrink-0 rounded-lg bg-orange-600 px-4 font-semibold text-white shadow-sm hover:bg-orange-700 focus-visible:outline focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-orange-600"
                >
                    "Send"
                </button>
            </div>
            <div class="mx-auto mt-1 flex max-w-3xl justify-between gap-3 text-xs">
                <p role="alert" class="font-medium text-red-700 dark:text-red-400">{error} " " {wait}</p>
                <p class="tabular-nums text-stone-500">{count}</p>
            </div>
        </form>
    }
}
