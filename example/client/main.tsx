import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { App } from './App.js'

// StrictMode mounts, unmounts and mounts again in development: the hooks still open a single socket.
createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>
)
