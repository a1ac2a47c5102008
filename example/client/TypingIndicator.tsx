/** "ana is typing…", "ana and li are typing…", "3 people are typing…", or nothing. */
export function TypingIndicator ({ userIds }: { userIds: readonly string[] }) {
  const text = userIds.length === 0
    ? ''
    : userIds.length === 1
      ? `${userIds[0]} is typing…`
      : userIds.length === 2
        ? `${userIds[0]} and ${userIds[1]} are typing…`
        : `${userIds.length} people are typing…`
  return <p className='typing' data-testid='typing-indicator' aria-live='polite'>{text}</p>
}
