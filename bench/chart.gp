# chart.gp -- docs/bench-local.png: Sprig's speed as a ratio of each peer's,
# per workload (bars: ratio of the medians, printed at their foot; whiskers:
# the per-run ratios; diamonds: the targets; dashed line: parity).  The data
# file comes from bench/report.py.
# usage: gnuplot -e "dat='F.dat'; out='F.png'" chart.gp
set terminal pngcairo size 960,540 font "sans,11" noenhanced
set output out
set title "Sprig vs its peers, same run, same data, same durability"
set ylabel "Sprig rate / peer rate (log scale)"
set logscale y
set yrange [0.1:40]
set ytics ("0.1" 0.1, "0.25" 0.25, "0.5" 0.5, "1" 1, "2" 2, "4" 4, "10" 10, "20" 20)
set xrange [-0.6:3.6]
set grid ytics lc rgb "#dddddd"
set key top left box opaque
set style fill solid 0.85 border -1
set boxwidth 0.36
set datafile missing "-"
set arrow from -0.6,1 to 3.6,1 nohead dt 2 lc rgb "#555555"
plot dat using 2:(NaN):xtic(1) notitle, \
     ''  using ($2-0.19):3 with boxes lc rgb "#4e79a7" title "vs raw LMDB", \
     ''  using ($2-0.19):4:(0):($5-$4) with vectors nohead lw 1.5 lc rgb "#222222" notitle, \
     ''  using ($2-0.19):(0.125):(sprintf("%.2f×", $3)) with labels tc rgb "white" font "sans,11" notitle, \
     ''  using ($2+0.19):7 with boxes lc rgb "#f28e2b" title "vs SQLite (WAL)", \
     ''  using ($2+0.19):8:(0):($9-$8) with vectors nohead lw 1.5 lc rgb "#222222" notitle, \
     ''  using ($2+0.19):(0.125):(sprintf("%.2f×", $7)) with labels tc rgb "white" font "sans,11" notitle, \
     ''  using ($2-0.19):6 with points pt 13 ps 2 lc rgb "#c00000" title "target", \
     ''  using ($2+0.19):10 with points pt 13 ps 2 lc rgb "#c00000" notitle
