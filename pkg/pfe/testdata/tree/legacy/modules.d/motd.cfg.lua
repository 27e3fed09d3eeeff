-- a legacy snippet
motd_text = [[Welcome]]
