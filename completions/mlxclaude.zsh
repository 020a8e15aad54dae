#compdef mlxclaude

_mlxclaude_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _MLXCLAUDE_COMPLETE=complete_zsh mlxclaude)
}

compdef _mlxclaude_completion mlxclaude
