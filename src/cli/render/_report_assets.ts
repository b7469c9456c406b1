/**
 * The inline style sheet and tooltip script of the run report (private to `report_html.ts`).
 * Plain text constants: the page loads nothing else.
 *
 * Layer: cli.
 *
 * @module
 */

/** Style of the report; bar geometry (`height`) and colours come from here, not per bar. */
export const REPORT_CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:16px 24px;color:#1d2330;background:#fff}
h1{font-size:20px;margin:0 0 12px}h2{font-size:16px;margin:22px 0 6px}
table{border-collapse:collapse;margin:6px 0}td,th{padding:2px 8px;border-bottom:1px solid #e3e6ec;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}.mono{font-family:ui-monospace,monospace;font-size:12px}
.tiles{display:flex;gap:10px;flex-wrap:wrap;margin-bottom:8px}
.tile{border:1px solid #d6dae2;border-radius:6px;padding:6px 12px;min-width:110px}
.tile span{display:block;color:#5b6475;font-size:12px}.tile b{font-size:18px}
.note{background:#fff7e0;border:1px solid #f0d48a;padding:6px 10px;border-radius:4px}
.scroll{overflow-x:auto}svg text{font-size:11px;fill:#3b4354}svg text.ex{font-weight:600;fill:#1d2330}
.grid{stroke:#eceef2}.axis{stroke:#9aa2b1}.tick{fill:#6b7385}
rect.k,rect.w{height:14px;stroke-width:1px;vector-effect:non-scaling-stroke}
.k.c,.w.c,.sw.c{fill:#4c9a6a;background:#4c9a6a}.k.f,.w.f,.sw.f{fill:#d1383d;background:#d1383d}
rect.w{fill-opacity:.55}
.k.r,.sw.r{fill:#e39b2d;background:#e39b2d}.k.i,.sw.i{fill:#8a6fc2;background:#8a6fc2}
.k.u,.w.u,.sw.u{fill:#9aa2b1;background:#9aa2b1}
/* A stroke that does not scale keeps failures, retries and interruptions visible as at least a
   2 px mark even when 10,000 bars make each one narrower than a pixel. */
.k.f{stroke:#d1383d;stroke-width:2px}.k.i{stroke:#8a6fc2;stroke-width:2px}
.k.x{stroke:#1d2330}.sw.x{background:#fff;outline:2px solid #1d2330}
.k.q{stroke:#d1383d;stroke-dasharray:3 2}.sw.q{background:#fff;outline:2px dashed #d1383d}
rect.k:hover,rect.w:hover{stroke:#000;stroke-width:2px}
.sw{display:inline-block;width:12px;height:12px;margin:0 4px 0 10px;vertical-align:-1px}
polyline.s{fill:none;stroke-width:1.5px}.s0{stroke:#2f6db5;fill:#2f6db5}.s1{stroke:#d1383d;fill:#d1383d}
.s2{stroke:#4c9a6a;fill:#4c9a6a}.s3{stroke:#8a6fc2;fill:#8a6fc2}.s4{stroke:#e39b2d;fill:#e39b2d}
.s5{stroke:#555;fill:#555}polyline.s{fill:none}
td.o.failed{color:#d1383d;font-weight:600}td.o.retried{color:#b0700f}
li.error{color:#a4262c}li.none{color:#6b7385;list-style:none}
li.manifest.passed b{color:#2f7a4b}li.manifest.failed{color:#a4262c}
#tip{position:fixed;pointer-events:none;background:#1d2330;color:#fff;padding:6px 8px;
border-radius:4px;font-size:12px;white-space:pre;z-index:9}
footer{margin-top:24px;color:#6b7385;font-size:12px}
`;

/**
 * Hover text of the timeline bars, built with `textContent` from the bar's attributes and the
 * JSON block `#report-data`. Sets `data-js="ok"` on `<body>` when it ran to the end, which tests
 * read from the DOM to know the script ran without an exception.
 */
export const REPORT_SCRIPT = `(function(){
var data=JSON.parse(document.getElementById("report-data").textContent);
var tip=document.getElementById("tip");
var outcome={c:"completed",f:"failed",r:"retried",i:"interrupted",u:"running"};
function num(n){return n.toLocaleString("en-US",{maximumFractionDigits:1});}
function dur(ms){return ms<60000?(ms/1000).toFixed(2)+" s":Math.floor(ms/60000)+" min "+Math.round(ms%60000/1000)+" s";}
var tl=document.getElementById("timeline");
if(tl){tl.addEventListener("mousemove",function(ev){
var r=ev.target;
if(!r.classList||!(r.classList.contains("k")||r.classList.contains("w"))){tip.hidden=true;return;}
var e=r.parentNode.getAttribute("data-e"),c=r.getAttribute("data-c"),a=r.getAttribute("data-a");
var start=+r.getAttribute("x"),ms=+r.getAttribute("width");
var whole=r.classList.contains("w");
var d=data.d[whole?e+".w":e+"."+c+"."+a]||[];
var o=outcome[r.classList[1]]||"";
var lines=[data.n[e]+(whole?": the export run, no chunk attempts ("+(o==="failed"?"failed":o==="running"?"no end recorded":"succeeded")+")":": chunk "+c+", attempt "+a+" ("+o+")"),"start "+dur(start)+", duration "+dur(ms)];
if(d[2]!=null)lines.push("range "+d[2]);
if(d[0]!=null)lines.push("rows "+num(d[0])+(ms>0?", "+num(d[0]/ms*1000)+" rows/s":""));
if(d[1]!=null)lines.push("bytes "+num(d[1]));
if(d[4]!=null)lines.push(d[4]+" file(s) quarantined before this attempt");
if(d[3]!=null)lines.push("error: "+d[3]);
if(d.length===0)lines.push("(details kept for failed, retried and slowest attempts only)");
tip.textContent=lines.join("\\n");tip.hidden=false;
tip.style.left=Math.min(ev.clientX+12,window.innerWidth-320)+"px";tip.style.top=(ev.clientY+12)+"px";
});tl.addEventListener("mouseleave",function(){tip.hidden=true;});}
document.body.setAttribute("data-js","ok");
})();`;
