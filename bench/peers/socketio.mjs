// Socket.IO peer: `join` with a room name joins it (answered with `joined`); every `msg` goes
// to every member of the sender's room, the sender included. With REDIS_URL set, it is one node
// of a cluster through Socket.IO's Redis adapter (npm @socket.io/redis-adapter): a room's
// members may be connected to any node.
import { createServer } from "node:http";
import { Server } from "socket.io";

const port = Number(process.argv[2] || 3102);
const http = createServer();
const io = new Server(http, { transports: ["websocket"], perMessageDeflate: false });
if (process.env.REDIS_URL) {
  const { createClient } = await import("redis");
  const { createAdapter } = await import("@socket.io/redis-adapter");
  const publisher = createClient({ url: process.env.REDIS_URL });
  const subscriber = publisher.duplicate();
  await Promise.all([publisher.connect(), subscriber.connect()]);
  io.adapter(createAdapter(publisher, subscriber));
}
io.on("connection", (socket) => {
  socket.on("join", (room) => {
    socket.data.room = room;
    socket.join(room);
    socket.emit("joined");
  });
  socket.on("msg", (text) => io.to(socket.data.room).emit("msg", text));
});
http.listen(port, "127.0.0.1");
