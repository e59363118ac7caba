/**
 * A credential that no longer stands, and why: heard by the composition root
 * so live connections authenticated with it end at once, in every API process
 * (the Socket.IO Redis adapter carries it: api/realtime/socket.ts
 * `endCredential`). Reported after its Redis marker is written.
 */
export type RevokedCredential = { reason: string } & ({ sessionId: string } | { apiKeyId: string } | { userId: string });

export type OnRevoked = (target: RevokedCredential) => void;
