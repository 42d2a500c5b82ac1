// Bun.serve peer (uWebSockets inside): GET /ws?room=R joins room R through Bun's native
// pub/sub; every text frame is published to R, the sender included.
//
// `bun bun.js [--stamped] PORT`. With --stamped, a message goes out as Burner sends one: a
// frame naming its author (member number and nickname), its number in the server and the time
// it was posted, with the text in it as a JSON string. Without, it goes out verbatim (fewer
// bytes, nothing done per message). The paired benchmark runs both beside Burner, to tell what
// Burner's frames cost from what its machinery does.
const args = process.argv.slice(2);
const stamped = args.includes("--stamped");
const port = Number(args.filter((arg) => arg !== "--stamped")[0] || 3103);
let members = 0;
let posted = 0;
Bun.serve({
  hostname: "127.0.0.1",
  port,
  fetch(request, server) {
    const room = new URL(request.url).searchParams.get("room") || "";
    if (server.upgrade(request, { data: { room, id: ++members } })) return;
    return new Response("WebSocket only", { status: 400 });
  },
  websocket: {
    perMessageDeflate: false,
    publishToSelf: true,
    open(socket) {
      socket.subscribe(socket.data.room);
    },
    message(socket, message) {
      if (!stamped) {
        socket.publish(socket.data.room, message);
        return;
      }
      const { id } = socket.data;
      const text = JSON.stringify(String(message));
      socket.publish(
        socket.data.room,
        `{"type":"message_posted","message":{"seq":${++posted},"at":${Date.now()},` +
          `"author":{"id":${id},"nickname":"m${id}"},"text":${text}}}`,
      );
    },
  },
});
