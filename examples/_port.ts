/** Where the examples connect: MQTT_HOST (default localhost) and the port from argv[2] or MQTT_PORT (default 1883). */
export function brokerUrl(): string {
  const host = process.env.MQTT_HOST ?? 'localhost';
  const port = Number(process.argv[2] ?? process.env.MQTT_PORT ?? 1883);
  return `mqtt://${host}:${port}`;
}
