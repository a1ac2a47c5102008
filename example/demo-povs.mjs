/**
 * The PoVs (points of view: a project, a ticket, a document) of the demo. Every signed-in user may watch each of
 * them until they leave it; a real app takes them, and who may see them, from its own database.
 */
export const DEMO_POVS = Object.freeze([
  { id: 'launch', name: 'Product launch' },
  { id: 'billing-migration', name: 'Billing migration' },
  { id: 'support', name: 'Support desk' }
])
