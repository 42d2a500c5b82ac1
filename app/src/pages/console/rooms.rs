//! Every room as it is now: its settings, its members, its recent messages, and what a
//! moderator can do to each.

use super::{DANGER, Desk, PANEL, SMALL, dialog::Form};
use crate::{
    components::{DiscordBadge, LocalTime, OneWayBadge},
    protocol::{BanTarget, ModAction, ModMember, ModMessage, ModRoom, Source},
};
use leptos::prelude::*;

/// Slow-mode choices, in seconds (0: off).
const SLOW_MODES: [(u32, &str); 6] =
    [(0, "Off"), (5, "5 s"), (10, "10 s"), (30, "30 s"), (60, "1 min"), (300, "5 min")];

#[component]
pub fn Rooms(desk: Desk) -> impl IntoView {
    let count = move || desk.snapshot.read().rooms.len();
    view! {
        <section aria-labelledby="rooms-title" class="space-y-4">
            <h2 id="rooms-title" class="text-lg font-semibold">"Rooms " <span class="tabular-nums text-stone-500 dark:text-stone-400">{count}</span></h2>
            {move || desk.snapshot.read().discord.as_ref().map(|discord| view! {
                <p class="text-sm text-stone-600 dark:text-stone-400">
                    {format!("Discord bridge: {} · {} sent · {} received · {} refused", discord.state, discord.sent, discord.received, discord.refused)}
                    {discord.error.clone().map(|error| view! {
                        <span class="block font-medium text-red-700 dark:text-red-400">{error}</span>
                    })}
                </p>
            })}
            {move || {
                desk.snapshot.get().rooms.into_iter().map(|room| view! { <RoomPanel desk room /> }).collect_view()
            }}
        </section>
    }
}

#[component]
fn RoomPanel(desk: Desk, room: ModRoom) -> impl IntoView {
    let ModRoom { room: summary, settings, members, recent } = room;
    let slug = summary.slug.clone();
    let heading = format!("room-{slug}");
    let labelled_by = heading.clone();
    let lock = {
        let slug = slug.clone();
        let locked = settings.locked;
        move |_| desk.act(ModAction::LockRoom { room: slug.clone(), locked: !locked })
    };
    let slow = {
        let slug = slug.clone();
        move |event: leptos::ev::Event| {
            if let Ok(seconds) = event_target_value(&event).parse::<u32>() {
                desk.act(ModAction::SlowMode { room: slug.clone(), seconds });
            }
        }
    };
    let close = {
        let (room, name) = (slug.clone(), summary.name.clone());
        move |_| desk.ask(Form::Close { room: room.clone(), name: name.clone() })
    };
    let discord =
        desk.snapshot.read_untracked().discord.as_ref().map(|d| d.links.iter().find(|l| l.room == slug).cloned());
    let bridge = discord.map(|link| match link {
        Some(link) => {
            let room = slug.clone();
            let unlink = move |_| desk.act(ModAction::UnlinkDiscord { room: room.clone() });
            leptos::either::Either::Left(view! {
                <span class="text-xs font-medium text-indigo-700 dark:text-indigo-300">"Bridged to Discord #"<bdi>{link.channel_name}</bdi></span>
                {link.problem.map(|problem| view! { <span class="text-xs font-medium text-red-700 dark:text-red-400">{problem}</span> })}
                {link.muted.into_iter().map(|author| {
                    let (room, id) = (slug.clone(), author.id.clone());
                    let unmute = move |_| desk.act(ModAction::UnmuteDiscordAuthor { room: room.clone(), author_id: id.clone() });
                    view! {
                        <button type="button" class=SMALL on:click=unmute title="This Discord author's messages do not reach the room">
                            "Unmute "<bdi>{author.name}</bdi>
                        </button>
                    }
                }).collect_view()}
                <button type="button" class=SMALL on:click=unlink>"Unlink Discord"</button>
            })
        }
        None => {
            let (room, name) = (slug.clone(), summary.name.clone());
            let link = move |_| desk.ask(Form::LinkDiscord { room: room.clone(), name: name.clone() });
            leptos::either::Either::Right(view! { <button type="button" class=SMALL on:click=link>"Link Discord channel"</button> })
        }
    });
    let slow_id = format!("slow-{slug}");
    let lobby = slug == crate::protocol::LOBBY_SLUG;
    view! {
        <article aria-labelledby=labelled_by class=PANEL>
            <div class="flex flex-wrap items-center gap-x-3 gap-y-2">
                <h3 id=heading class="min-w-0 truncate font-semibold">
                    <a href=format!("/r/{slug}") class="hover:underline"><bdi>{summary.name.clone()}</bdi></a>
                </h3>
                {summary.one_way.then(|| view! { <OneWayBadge /> })}
                {settings.locked.then(|| view! {
                    <span class="rounded-full bg-stone-200 px-2 py-0.5 text-xs font-medium dark:bg-stone-700">"Locked"</span>
                })}
                <span class="text-xs tabular-nums text-stone-500 dark:text-stone-400">{format!("{} / {} people", summary.members, summary.limit)}</span>
                <span class="text-xs text-stone-500 dark:text-stone-400">{format!("profanity: {}", settings.profanity.as_str())}</span>
                <div class="ml-auto flex flex-wrap items-center gap-2">
                    <label for=slow_id.clone() class="text-xs text-stone-600 dark:text-stone-400">"Slow mode"</label>
                    <select id=slow_id on:change=slow class="rounded-md border border-stone-300 bg-white px-1 py-1 text-xs dark:border-stone-700 dark:bg-stone-900">
                        {SLOW_MODES
                            .iter()
                            .map(|(seconds, label)| view! {
                                <option value=seconds.to_string() selected=*seconds == settings.slow_mode_secs>{*label}</option>
                            })
                            .collect_view()}
                        {(!SLOW_MODES.iter().any(|(s, _)| *s == settings.slow_mode_secs)).then(|| view! {
                            <option value=settings.slow_mode_secs.to_string() selected>{format!("{} s", settings.slow_mode_secs)}</option>
                        })}
                    </select>
                    {bridge}
                    <button type="button" class=SMALL on:click=lock>{if settings.locked { "Unlock room" } else { "Lock room" }}</button>
                    {(!lobby).then(|| view! { <button type="button" class=DANGER on:click=close>"Close room"</button> })}
                </div>
            </div>
            <MemberTable desk slug=slug.clone() name=summary.name.clone() members />
            <RecentMessages desk slug recent />
        </article>
    }
}

#[component]
fn MemberTable(desk: Desk, slug: String, name: String, members: Vec<ModMember>) -> impl IntoView {
    if members.is_empty() {
        return leptos::either::Either::Left(
            view! { <p class="mt-3 text-sm text-stone-500 dark:text-stone-400">"Nobody is here."</p> },
        );
    }
    let rows = members
        .into_iter()
        .map(|member| {
            let (room, id, nickname) = (slug.clone(), member.id, member.nickname.clone());
            let kick = {
                let (room, nickname) = (room.clone(), nickname.clone());
                move |_| desk.ask(Form::Kick { room: room.clone(), member: id, nickname: nickname.clone() })
            };
            let ban = {
                let (room, who) = (room.clone(), format!("{nickname} in {name}"));
                move |_| {
                    desk.ask(Form::Ban { target: BanTarget::Member { room: room.clone(), member: id }, who: who.clone() })
                }
            };
            let muted = member.shadow_muted;
            let mute = move |_| desk.act(ModAction::ShadowMute { room: room.clone(), member: id, muted: !muted });
            view! {
                <tr class="border-t border-stone-100 dark:border-stone-800">
                    <th scope="row" class="max-w-40 truncate py-1.5 pr-3 text-left font-medium">
                        <bdi>{member.nickname}</bdi>
                        {muted.then(|| view! { <span class="ml-2 text-xs font-normal text-amber-700 dark:text-amber-400">"shadow-muted"</span> })}
                    </th>
                    <td class="py-1.5 pr-3 font-mono text-xs text-stone-600 dark:text-stone-400">{member.ip_hash}</td>
                    <td class="py-1.5 pr-3"><LocalTime at=member.since /></td>
                    <td class="py-1.5 pr-3 text-right tabular-nums">{member.sent}</td>
                    <td class="py-1.5">
                        <div class="flex justify-end gap-1.5">
                            <button type="button" class=SMALL on:click=mute>{if muted { "Unmute" } else { "Shadow-mute" }}</button>
                            <button type="button" class=DANGER on:click=kick>"Kick"</button>
                            <button type="button" class=DANGER on:click=ban>"Ban"</button>
                        </div>
                    </td>
                </tr>
            }
        })
        .collect_view();
    leptos::either::Either::Right(view! {
        <div class="mt-3 overflow-x-auto">
            <table class="w-full text-sm">
                <caption class="sr-only">{format!("Members of {name}")}</caption>
                <thead class="text-left text-xs text-stone-500 dark:text-stone-400">
                    <tr>
                        <th scope="col" class="pb-1 font-medium">"Nickname"</th>
                        <th scope="col" class="pb-1 font-medium">"Address hash"</th>
                        <th scope="col" class="pb-1 font-medium">"Since"</th>
                        <th scope="col" class="pb-1 text-right font-medium">"Sent"</th>
                        <th scope="col" class="pb-1"><span class="sr-only">"Actions"</span></th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    })
}

#[component]
fn RecentMessages(desk: Desk, slug: String, recent: Vec<ModMessage>) -> impl IntoView {
    let count = recent.len();
    (count > 0).then(|| {
        let items = recent
            .into_iter()
            .rev()
            .map(|message| {
                let (room, seq, text) = (slug.clone(), message.seq, message.text.clone());
                let from_discord = message.source == Source::Discord;
                let mute = {
                    let room = room.clone();
                    move |_| desk.act(ModAction::MuteDiscordAuthor { room: room.clone(), seq })
                };
                let delete = move |_| desk.ask(Form::Delete { room: room.clone(), seq, text: text.clone() });
                view! {
                    <li class="flex items-start gap-2 py-1">
                        <div class="min-w-0 flex-1">
                            <p class="flex items-baseline gap-2 text-xs text-stone-500 dark:text-stone-400">
                                <bdi class="font-semibold text-stone-700 dark:text-stone-300">{message.author.nickname}</bdi>
                                <span class="font-mono">{message.author_hash}</span>
                                <LocalTime at=message.at />
                                {message.shadow_muted.then(|| view! { <span class="text-amber-700 dark:text-amber-400">"shadow-muted"</span> })}
                                {from_discord.then(|| view! { <DiscordBadge /> })}
                            </p>
                            <p class="whitespace-pre-wrap break-words text-sm"><bdi>{message.text}</bdi></p>
                        </div>
                        {from_discord.then(|| view! { <button type="button" class=SMALL on:click=mute.clone()>"Mute in bridge"</button> })}
                        <button type="button" class=SMALL on:click=delete>"Delete"</button>
                    </li>
                }
            })
            .collect_view();
        let shown = {
            let slug = slug.clone();
            move || desk.expanded.read().contains(&slug)
        };
        let toggle = {
            let (slug, shown) = (slug.clone(), shown.clone());
            move |_| {
                let open = shown();
                desk.expanded.update(|expanded| {
                    if open {
                        expanded.retain(|s| *s != slug);
                    } else {
                        expanded.push(slug.clone());
                    }
                });
            }
        };
        let list_id = format!("recent-{slug}");
        view! {
            <div class="mt-3">
                <button
                    type="button"
                    on:click=toggle
                    aria-expanded={
                        let shown = shown.clone();
                        move || shown().to_string()
                    }
                    aria-controls=list_id.clone()
                    class="text-sm font-medium text-stone-600 hover:underline dark:text-stone-400"
                >
                    {format!("Recent messages ({count})")}
                </button>
                <ol
                    id=list_id
                    class="mt-2 max-h-80 divide-y divide-stone-100 overflow-y-auto dark:divide-stone-800"
                    class:hidden=move || !shown()
                >
                    {items}
                </ol>
            </div>
        }
    })
}
