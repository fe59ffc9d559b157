# chart.gp -- docs/bench-local.png: Sprig's speed as a ratio of each peer's,
# per workload (bars: ratio of the medians, printed above them; whiskers:
# the per-run ratios; diamonds: the targets; dashed line: parity).  Peers:
# raw LMDB, SQLite, and another (the summary's last column: Sprig without
# the view, SQLite's covering index, LMDB's long read transaction, pthread
# queues for PubSub).  The data file comes from bench/report.py.
# usage: gnuplot -e "dat='F.dat'; out='F.png'" chart.gp
set terminal pngcairo size 1400,620 font "sans,10" noenhanced
set output out
stats dat using 2 nooutput
n = STATS_max + 1
set title "Sprig vs its peers, same run, same data, same durability"
set ylabel "Sprig rate / peer rate (log scale)"
set logscale y
set yrange [0.05:20000]
set ytics ("0.1" 0.1, "0.25" 0.25, "0.5" 0.5, "1" 1, "2" 2, "4" 4, "10" 10, "100" 100, "1000" 1000, "10000" 10000)
set xrange [-0.6:n - 0.4]
set xtics rotate by 30 right font "sans,9"
set grid ytics lc rgb "#dddddd"
set key outside top center horizontal
set style fill solid 0.85 border -1
set boxwidth 0.27
set datafile missing "-"
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lc rgb "#555555"
w = 0.28
plot dat using 2:(NaN):xtic(1) notitle, \
     ''  using ($2-w):3 with boxes lc rgb "#4e79a7" title "vs raw LMDB", \
     ''  using ($2-w):4:(0):($5-$4) with vectors nohead lw 1.5 lc rgb "#222222" notitle, \
     ''  using ($2-w):((valid(6) && $6>$5 ? $6 : $5)*1.3):(sprintf("%.2f", $3)) with labels font "sans,8" rotate by 90 left notitle, \
     ''  using 2:7 with boxes lc rgb "#f28e2b" title "vs SQLite (WAL)", \
     ''  using 2:8:(0):($9-$8) with vectors nohead lw 1.5 lc rgb "#222222" notitle, \
     ''  using 2:((valid(10) && $10>$9 ? $10 : $9)*1.3):(sprintf("%.2f", $7)) with labels font "sans,8" rotate by 90 left notitle, \
     ''  using ($2+w):11 with boxes lc rgb "#59a14f" title "vs another peer (the summary table's last column)", \
     ''  using ($2+w):12:(0):($13-$12) with vectors nohead lw 1.5 lc rgb "#222222" notitle, \
     ''  using ($2+w):((valid(14) && $14>$13 ? $14 : $13)*1.3):(sprintf("%.2f", $11)) with labels font "sans,8" rotate by 90 left notitle, \
     ''  using ($2-w):6 with points pt 13 ps 1.6 lc rgb "#c00000" title "target", \
     ''  using 2:10 with points pt 13 ps 1.6 lc rgb "#c00000" notitle, \
     ''  using ($2+w):14 with points pt 13 ps 1.6 lc rgb "#c00000" notitle
