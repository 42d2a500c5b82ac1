//! What the server remembers: reports waiting for a look, bans in force, the connection log
//! (searched on demand) and the audit log of every moderator action.

use super::{DANGER, Desk, PANEL, SMALL, dialog::Form};
use crate::{
    components::LocalTime,
    pages::INPUT,
    protocol::{BanTarget, ConnectionView, ModAction, ReportView},
    text::utc_date_time,
};
use leptos::{ev::SubmitEvent, prelude::*};

#[component]
pub fn Reports(desk: Desk) -> impl IntoView {
    let open = move || desk.snapshot.read().reports.iter().filter(|r| !r.resolved).count();
    view! {
        <section aria-labelledby="reports-title" class=PANEL>
            <h2 id="reports-title" class="font-semibold">"Reports " <span class="tabular-nums text-stone-500 dark:text-stone-400">{open}</span></h2>
            {move || {
                let reports = desk.snapshot.get().reports;
                if reports.is_empty() {
                    return leptos::either::Either::Left(view! { <p class="mt-2 text-sm text-stone-500 dark:text-stone-400">"No reports."</p> });
                }
                let items = reports.into_iter().map(|report| view! { <ReportItem desk report /> }).collect_view();
                leptos::either::Either::Right(view! { <ol class="mt-3 space-y-3">{items}</ol> })
            }}
        </section>
    }
}

#[component]
fn ReportItem(desk: Desk, report: ReportView) -> impl IntoView {
    let ReportView { id, at, room, message_seq, reason, snapshot, resolved } = report;
    let reported = snapshot.iter().find(|m| m.seq == message_seq).cloned();
    let still_there = desk
        .snapshot
        .read_untracked()
        .rooms
        .iter()
        .any(|r| r.room.slug == room && r.recent.iter().any(|m| m.seq == message_seq));
    let delete = {
        let (room, text) = (room.clone(), reported.as_ref().map(|m| m.text.clone()).unwrap_or_default());
        move |_| desk.ask(Form::Delete { room: room.clone(), seq: message_seq, text: text.clone() })
    };
    let ban = reported.as_ref().map(|m| {
        let (hash, who) = (m.author_hash.clone(), format!("{} (address hash {})", m.author.nickname, m.author_hash));
        move |_| desk.ask(Form::Ban { target: BanTarget::Hash { hash: hash.clone() }, who: who.clone() })
    });
    let resolve = move |_| desk.act(ModAction::ResolveReport { id });
    let context = snapshot.len();
    let around = snapshot
        .into_iter()
        .map(|m| {
            let highlight = m.seq == message_seq;
            view! {
                <li class=if highlight { "rounded bg-red-50 px-2 py-1 dark:bg-red-950" } else { "px-2 py-1" }>
                    <span class="text-xs text-stone-500 dark:text-stone-400"><bdi class="font-semibold">{m.author.nickname}</bdi>" "</span>
                    <bdi class="whitespace-pre-wrap break-words">{m.text}</bdi>
                </li>
            }
        })
        .collect_view();
    view! {
        <li class=if resolved { "rounded-xl border border-stone-200 p-3 opacity-60 dark:border-stone-800" } else { "rounded-xl border border-amber-300 p-3 dark:border-amber-800" }>
            <div class="flex flex-wrap items-baseline gap-x-2 text-sm">
                <span class="font-medium">{format!("#{message_seq} in {room}")}</span>
                <LocalTime at />
                {resolved.then(|| view! { <span class="text-xs text-stone-500 dark:text-stone-400">"resolved"</span> })}
            </div>
            {reported.map(|m| view! {
                <p class="mt-1 text-sm">
                    <bdi class="font-semibold">{m.author.nickname}</bdi>": "
                    <bdi class="whitespace-pre-wrap break-words">{m.text}</bdi>
                </p>
            })}
            {(!reason.is_empty()).then(|| view! { <p class="mt-1 text-xs text-stone-600 dark:text-stone-400">"Reason: "<bdi>{reason}</bdi></p> })}
            <details class="mt-2 text-sm">
                <summary class="cursor-pointer text-xs text-stone-600 dark:text-stone-400">{format!("The room at the time ({context} messages)")}</summary>
                <ol class="mt-1 max-h-60 space-y-0.5 overflow-y-auto">{around}</ol>
            </details>
            {(!resolved).then(|| view! {
                <div class="mt-2 flex flex-wrap gap-2">
                    {still_there.then(|| view! { <button type="button" class=SMALL on:click=delete>"Delete message"</button> })}
                    {ban.map(|ban| view! { <button type="button" class=DANGER on:click=ban>"Ban author"</button> })}
                    <button type="button" class=SMALL on:click=resolve>"Resolve"</button>
                </div>
            })}
        </li>
    }
}

#[component]
pub fn Bans(desk: Desk) -> impl IntoView {
    view! {
        <section aria-labelledby="bans-title" class=PANEL>
            <h2 id="bans-title" class="font-semibold">"Bans in force"</h2>
            {move || {
                let bans = desk.snapshot.get().bans;
                if bans.is_empty() {
                    return leptos::either::Either::Left(view! { <p class="mt-2 text-sm text-stone-500 dark:text-stone-400">"Nobody is banned."</p> });
                }
                let rows = bans
                    .into_iter()
                    .map(|ban| {
                        let id = ban.id;
                        let until = ban.expires_at.map_or_else(|| "permanent".to_owned(), utc_date_time);
                        view! {
                            <li class="flex items-start gap-2 py-2">
                                <div class="min-w-0 flex-1 text-sm">
                                    <p class="break-all font-mono text-xs">{ban.target}</p>
                                    <p><bdi>{ban.reason}</bdi></p>
                                    <p class="text-xs text-stone-500 dark:text-stone-400">"until "{until}</p>
                                </div>
                                <button type="button" class=SMALL on:click=move |_| desk.act(ModAction::Unban { id })>"Lift"</button>
                            </li>
                        }
                    })
                    .collect_view();
                leptos::either::Either::Right(view! { <ul class="mt-1 divide-y divide-stone-100 dark:divide-stone-800">{rows}</ul> })
            }}
        </section>
    }
}

#[component]
pub fn Audit(desk: Desk) -> impl IntoView {
    view! {
        <section aria-labelledby="audit-title" class=PANEL>
            <h2 id="audit-title" class="font-semibold">"Audit log"</h2>
            {move || {
                let entries = desk.snapshot.get().audit;
                if entries.is_empty() {
                    return leptos::either::Either::Left(view! { <p class="mt-2 text-sm text-stone-500 dark:text-stone-400">"No moderator actions yet."</p> });
                }
                let rows = entries
                    .into_iter()
                    .map(|entry| view! {
                        <li class="py-1.5 text-sm">
                            <p class="flex flex-wrap items-baseline gap-x-2">
                                <span class="font-medium">{entry.action.replace('_', " ")}</span>
                                <bdi class="min-w-0 break-all text-stone-700 dark:text-stone-300">{entry.target}</bdi>
                                <span class="ml-auto text-xs text-stone-500 dark:text-stone-400">{utc_date_time(entry.at)}</span>
                            </p>
                            {(!entry.reason.is_empty()).then(|| view! { <p class="text-xs text-stone-600 dark:text-stone-400"><bdi>{entry.reason}</bdi></p> })}
                        </li>
                    })
                    .collect_view();
                leptos::either::Either::Right(view! { <ol class="mt-1 max-h-96 divide-y divide-stone-100 overflow-y-auto dark:divide-stone-800">{rows}</ol> })
            }}
        </section>
    }
}

/// Connection-log search: by address hash (or its start), address, or nickname.
#[component]
pub fn Search(desk: Desk) -> impl IntoView {
    let text = RwSignal::new(String::new());
    let reveal = RwSignal::new(false);
    let results = RwSignal::new(None::<Result<Vec<ConnectionView>, String>>);
    let on_submit = move |event: SubmitEvent| {
        event.prevent_default();
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            let found = crate::api::search_log(text.get_untracked(), reveal.get_untracked()).await;
            results.set(Some(found.map_err(|error| error.message)));
        });
    };
    let rows = move || {
        results.get().map(|found| match found {
            Err(message) => leptos::either::Either::Left(
                view! { <p role="alert" class="mt-2 text-sm text-red-700 dark:text-red-400">{message}</p> },
            ),
            Ok(rows) => leptos::either::Either::Right(view! {
                <p class="mt-2 text-xs text-stone-500 dark:text-stone-400">{format!("{} connection(s), newest first", rows.len())}</p>
                <ol class="mt-1 max-h-96 divide-y divide-stone-100 overflow-y-auto dark:divide-stone-800">
                    {rows.into_iter().map(|row| view! { <ConnectionRow desk row /> }).collect_view()}
                </ol>
            }),
        })
    };
    view! {
        <section aria-labelledby="search-title" class=PANEL>
            <h2 id="search-title" class="font-semibold">"Connection log"</h2>
            <form on:submit=on_submit class="mt-2 space-y-2">
                <label for="log-search" class="sr-only">"Search the log"</label>
                <div class="flex gap-2">
                    <input
                        id="log-search"
                        type="search"
                        required
                        placeholder="Address hash, address or nickname"
                        bind:value=text
                        class=INPUT
                    />
                    <button type="submit" class=SMALL>"Search"</button>
                </div>
                <label class="flex items-center gap-2 text-xs text-stone-600 dark:text-stone-400">
                    <input type="checkbox" bind:checked=reveal class="accent-orange-600" />
                    "Show addresses (written to the audit log)"
                </label>
            </form>
            {rows}
        </section>
    }
}

#[component]
fn ConnectionRow(desk: Desk, row: ConnectionView) -> impl IntoView {
    let ConnectionView { opened_at, closed_at, ip, ip_hash, user_agent, joins } = row;
    let ban = {
        let hash = ip_hash.clone();
        move |_| {
            desk.ask(Form::Ban { target: BanTarget::Hash { hash: hash.clone() }, who: format!("address hash {hash}") })
        }
    };
    let agent = user_agent.clone();
    let names = joins
        .into_iter()
        .map(|(_, room, nickname)| view! { <li><bdi class="font-medium">{nickname}</bdi>" in "{room}</li> })
        .collect_view();
    view! {
        <li class="flex items-start gap-2 py-2 text-sm">
            <div class="min-w-0 flex-1">
                <p class="flex flex-wrap gap-x-2 font-mono text-xs">
                    <span>{ip_hash}</span>
                    {ip.map(|ip| view! { <span class="text-red-800 dark:text-red-300">{ip}</span> })}
                </p>
                <p class="text-xs text-stone-500 dark:text-stone-400">
                    {utc_date_time(opened_at)}
                    {closed_at.map(|at| format!(" – {}", utc_date_time(at)))}
                </p>
                <ul class="text-xs">{names}</ul>
                <p class="truncate text-xs text-stone-500 dark:text-stone-400" title=agent>{user_agent}</p>
            </div>
            <button type="button" class=DANGER on:click=ban>"Ban"</button>
        </li>
    }
}
