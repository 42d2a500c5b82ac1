// Bun.serve peer (uWebSockets inside): GET /ws?room=R joins room R through Bun's native
// pub/sub; every text frame is published to R, the sender included.
const port = Number(process.argv[2] || 3103);
Bun.serve({
  hostname: "127.0.0.1",
  port,
  fetch(request, server) {
    const room = new URL(request.url).searchParams.get("room") || "";
    if (server.upgrade(request, { data: { room } })) return;
    return new Response("WebSocket only", { status: 400 });
  },
  websocket: {
    perMessageDeflate: false,
    publishToSelf: true,
    open(socket) {
      socket.subscribe(socket.data.room);
    },
    message(socket, message) {
      socket.publish(socket.data.room, message);
    },
  },
});
