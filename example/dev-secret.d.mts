// Types of dev-secret.mjs, for the TypeScript tests.
export declare function loadOrCreateDevSecret (file: string): Promise<{ secret: string, created: boolean }>
