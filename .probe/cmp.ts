import { compareStatements } from '../platform/knowledge/dedup.ts';
for (const [a, b] of [
  ['Side note: my usual coffee is a chai.', 'Side note: my usual coffee is a cortado.'],
  ['Side note: my usual coffee is a oat latte.', 'Side note: my usual coffee is a green tea.'],
  ['For context, I live in Riga now.', 'For context, I live in Porto now.'],
  ['Side note: my usual coffee is a flat white.', 'Side note: my usual coffee is a espresso.'],
])
  console.log(a, '|', b, '→', JSON.stringify(compareStatements(a, b)));
