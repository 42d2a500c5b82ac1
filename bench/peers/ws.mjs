// Node `ws` peer: GET /ws?room=R joins room R; every text frame goes to every member of R,
// the sender included (the same room semantics as every peer in the benchmark).
import { WebSocketServer } from "ws";

const port = Number(process.argv[2] || 3101);
const rooms = new Map();
const server = new WebSocketServer({ host: "127.0.0.1", port, perMessageDeflate: false });
server.on("connection", (socket, request) => {
  const room = new URL(request.url, "http://x").searchParams.get("room") || "";
  if (!rooms.has(room)) rooms.set(room, new Set());
  const members = rooms.get(room);
  members.add(socket);
  socket.on("message", (data, isBinary) => {
    for (const member of members) member.send(data, { binary: isBinary });
  });
  socket.on("close", () => members.delete(socket));
});
